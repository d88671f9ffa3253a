"""The start-up check both runtimes run before loading a model: the file is there."""

from __future__ import annotations

from pathlib import Path

from workers.oip.errors import ModelLoadError


def check_model_file(path: Path) -> None:
    """ModelLoadError naming `path` unless it is an existing file (cheap: no torch needed)."""
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelLoadError(f"model path is not a file: {path}")
