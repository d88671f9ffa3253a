"""Real model files for the registry tests: TorchScript, and a HuggingFace cache layout."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path


def torchscript_file(path: Path, seed: int = 0) -> Path:
    """A small scripted Linear(4, 2) saved with torch.jit.save (what workers load)."""
    import torch

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in 2.13
        torch.jit.save(torch.jit.script(torch.nn.Linear(4, 2)), str(path))
    return path


def hf_cache(
    root: Path, repo_id: str, files: dict[str, bytes], revision: str = "main", commit: str = ""
) -> str:
    """Lay out `files` as huggingface_hub caches them; returns the commit hash.

    blobs/<sha256> hold the bytes, snapshots/<commit>/<name> link to them, refs/<revision>
    holds the commit: the layout `huggingface-cli download` leaves behind.
    """
    commit = commit or hashlib.sha1(repo_id.encode()).hexdigest()
    repo = root / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../..") / "blobs" / blob.name)
    return commit
