"""A --backend-directory for Triton whose Python backend uses the running interpreter's stub.

The folder holds symlinks only (the stub is 29 MB): python/libtriton_python.so and
python/triton_python_backend_utils.py from pytriton, python/triton_python_backend_stub from
pytriton's stub for this Python version. It is shared by all workers of one install and Python
version and created atomically (build aside, then rename), so workers starting together agree.
It lives outside the model repository, where Triton would take it for a model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from workers.triton_worker.errors import TritonSetupError
from workers.triton_worker.install import STUB_NAME, TritonInstall


def default_base() -> Path:
    return Path(tempfile.gettempdir()) / "meshline-triton-backends"


def backend_links(install: TritonInstall, version: str) -> dict[str, Path]:
    """File name inside backends/python/ -> what it links to."""
    return {
        install.backend_library.name: install.backend_library,
        install.backend_utils.name: install.backend_utils,
        STUB_NAME: install.stub(version),
    }


def prepare_backend_directory(
    install: TritonInstall, version: str, base: Path | None = None
) -> Path:
    """The backend directory for `install` and Python `version`, made if needed."""
    links = backend_links(install, version)  # a missing stub fails here, naming the version
    base = base or default_base()
    digest = hashlib.sha1(str(install.root).encode()).hexdigest()[:12]
    target = base / f"py{version}-{digest}"
    if _complete(target, links):
        return target
    try:
        base.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=base))
        (staging / "python").mkdir()
        for name, source in links.items():
            (staging / "python" / name).symlink_to(source)
        try:
            os.rename(staging, target)
        except OSError:  # another worker won the race, or a stale folder is in the way
            if not _complete(target, links):
                shutil.rmtree(target, ignore_errors=True)
                os.rename(staging, target)
            else:
                shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        raise TritonSetupError(
            f"cannot prepare the Triton backend directory {target}: {exc}"
        ) from exc
    return target


def _complete(target: Path, links: dict[str, Path]) -> bool:
    folder = target / "python"
    try:
        return all(os.readlink(folder / name) == str(src) for name, src in links.items())
    except OSError:
        return False
