"""One process per state directory: a second `meshline up` (or control plane) is refused."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class AlreadyRunningError(RuntimeError):
    """Another process holds the lock; the message names it."""


def hold_lock(path: Path) -> IO[str]:
    """Take an exclusive lock on `path` for as long as the returned file stays open."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - the caller keeps it open as the lock
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise AlreadyRunningError(
            f"{path.parent} is already in use by pid {holder}; stop it first "
            "or pass another --state-dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
