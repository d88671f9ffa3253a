"""Files written whole: those that hold a secret for their owner (an API key, the admin token,
the CLI's contexts, an agent's identity) and the public ones beside them (a trust bundle, an
SDS file that names files).

One writer for each kind, in the bottom layer because the control plane (the admin token, its
CAs' certificates), the agent (its identity, its CA bundle) and the CLI (the demo key, the
credentials file) all write such files. Both write under a temporary name and rename, so a
reader never sees half a file; a secret file is readable by the owner only (0600) from the
first byte, so no other user ever sees any of it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644
# A new parent directory is the owner's only: public files often sit beside secret ones.
_PARENT_MODE = 0o700


def write_secret_file(path: Path, text: str) -> Path:
    """Replace `path` with `text`, mode 0600 from the first byte; the parent directory is
    created (0700) when missing. Returns `path`."""
    return _replace_whole(path, text.encode(), SECRET_MODE)


def write_public_file(path: Path, content: str | bytes) -> Path:
    """Replace `path` with `content`, mode 0644 (anyone may read it), unless it holds exactly
    that already (left untouched: a watcher sees no change); the parent directory is created
    (0700) when missing. Returns `path`."""
    data = content.encode() if isinstance(content, str) else content
    if path.exists() and path.read_bytes() == data:
        return path
    return _replace_whole(path, data, PUBLIC_MODE)


def _replace_whole(path: Path, data: bytes, mode: int) -> Path:
    """Write `data` to a new file of `mode` beside `path` and rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=_PARENT_MODE)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)  # the mode asked for, whatever the umask
            out.write(data)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    return path
