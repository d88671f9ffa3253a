"""Tell a TorchScript archive from other files by its layout (no torch import: cheap)."""

from __future__ import annotations

import zipfile
from pathlib import Path

TORCHSCRIPT = "torchscript"
PYTORCH = "pytorch"  # an eager torch.save archive: weights or a pickled module, not servable
UNKNOWN = "unknown"


def detect_framework(path: Path) -> str:
    """ "torchscript" for torch.jit.save archives (they carry `code/` and `constants.pkl`),
    "pytorch" for other torch.save archives, else "unknown"."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return UNKNOWN
    parts = [name.split("/", 1)[-1] for name in names]
    if "constants.pkl" in parts and any(p.startswith("code/") for p in parts):
        return TORCHSCRIPT
    if "data.pkl" in parts:
        return PYTORCH
    return UNKNOWN
