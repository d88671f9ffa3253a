"""Files that hold a secret for their owner (an API key, the admin token, the CLI's contexts).

One writer for all of them, in the bottom layer because the control plane (the admin token) and
the CLI (the demo key, the credentials file) both write such files: readable by the owner only
(0600) from the first byte, written under a temporary name and renamed, so a reader never sees
half a secret and no other user ever sees any of it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_secret_file(path: Path, text: str) -> Path:
    """Replace `path` with `text`, mode 0600 from the first byte; the parent directory is
    created (0700) when missing. Returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    return path
