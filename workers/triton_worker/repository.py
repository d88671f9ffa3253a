"""Write the model repository Triton serves: <dir>/<model>/{config.pbtxt, <version>/model.py}.

The folder is rewritten at every start (a restart with other flags must not serve stale files), so
it has to be ours: a marker file says so, and a non-empty folder without it is refused rather than
wiped.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from workers.triton_worker.backend import MODEL_FILE
from workers.triton_worker.errors import TritonSetupError
from workers.triton_worker.pbtxt import ModelConfig

MARKER = ".meshline-triton-repository"


class ForeignDirectoryError(TritonSetupError):
    """--repository-dir is a non-empty folder meshline did not write."""


def write_repository(directory: Path, model: ModelConfig) -> Path:
    """Replace `directory` with a repository serving `model`; returns the model's folder."""
    _clear(directory)
    model_dir = directory / model.name
    version_dir = model_dir / str(model.version)
    try:
        version_dir.mkdir(parents=True)
        (directory / MARKER).write_text("written by meshline's triton worker; rewritten at start\n")
        (model_dir / "config.pbtxt").write_text(model.render())
        shutil.copyfile(MODEL_FILE, version_dir / "model.py")
    except OSError as exc:
        raise TritonSetupError(f"cannot write the model repository {directory}: {exc}") from exc
    return model_dir


def _clear(directory: Path) -> None:
    if not directory.exists():
        return
    if not directory.is_dir():
        raise ForeignDirectoryError(f"--repository-dir: {directory} is not a directory")
    entries = list(directory.iterdir())
    if entries and not (directory / MARKER).is_file():
        raise ForeignDirectoryError(
            f"--repository-dir: {directory} is not empty and was not written by meshline's "
            "triton worker; refusing to overwrite it"
        )
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
