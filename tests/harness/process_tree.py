"""Processes by their place in the tree (/proc): what a process started, and whether it still runs.

A pid is kept with its start time, so that a pid the kernel reuses for another process is never
taken for the one a test saw.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessId:
    pid: int
    started: int  # /proc/PID/stat starttime (clock ticks after boot)


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a running process; None once it is gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[19])


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def children(parent: int) -> set[ProcessId]:
    """The processes whose parent is `parent` now."""
    found: set[ProcessId] = set()
    for entry in Path("/proc").iterdir():
        stat = _stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None and stat[0] == parent:
            found.add(ProcessId(int(entry.name), stat[1]))
    return found


def child_running(parent: int, marker: str) -> ProcessId | None:
    """The one child of `parent` whose command line holds `marker` (None: none runs)."""
    found = [p for p in children(parent) if marker in command_line(p.pid)]
    assert len(found) <= 1, f"{len(found)} children of {parent} run {marker!r}: {found}"
    return found[0] if found else None


def descendants(root: int) -> set[ProcessId]:
    """Every process below `root` now."""
    below: dict[int, list[ProcessId]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            below.setdefault(stat[0], []).append(ProcessId(int(entry.name), stat[1]))
    found: set[ProcessId] = set()
    todo = [root]
    while todo:
        for child in below.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child.pid)
    return found


def running(process: ProcessId) -> bool:
    stat = _stat(process.pid)
    return stat is not None and stat[1] == process.started


def still_running(processes: set[ProcessId]) -> list[int]:
    """The pids of `processes` that still run, killed (a failing test leaves nothing behind)."""
    alive = sorted(p.pid for p in processes if running(p))
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return alive


def processes_naming(path: Path) -> list[int]:
    """Pids (other than this one) whose command line names `path`."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and int(entry.name) != os.getpid()
        and str(path) in command_line(int(entry.name))
    ]


@contextmanager
def swept(path: Path) -> Iterator[list[int]]:
    """The pids still naming `path` when the block ends, killed then, also on failure."""
    left: list[int] = []
    try:
        yield left
    finally:
        left.extend(processes_naming(path))
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
