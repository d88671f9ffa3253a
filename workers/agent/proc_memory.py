"""Memory from Linux's /proc: the machine's, and a process tree's (a worker and its children).

A worker's memory is its proportional set size (PSS): each page counts once, split among the
processes that map it. Resident size (RSS) would count the pages a worker shares with others
(the interpreter and torch libraries a standby preloaded, the shared libraries of every
worker) once per worker, so a machine's workers would seem to use several times the memory
they do. Parsers are pure (table tests); the readers around them only open files.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
KIB = 1024


@dataclass(frozen=True)
class MachineMemory:
    total_bytes: int
    available_bytes: int


def _kib_fields(text: str, names: frozenset[str]) -> dict[str, int]:
    """`Name:   123 kB` lines of /proc files, for the names asked, in bytes."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        if not sep or name not in names:
            continue
        value, *unit = rest.split() or [""]
        if unit not in ([], ["kB"]) or not value.isdigit():
            raise ValueError(f"unexpected {name} line: {line.strip()!r}")
        found[name] = int(value) * (KIB if unit else 1)
    return found


def parse_meminfo(text: str) -> MachineMemory:
    """/proc/meminfo: MemTotal and MemAvailable (the kernel's estimate of what new work can
    use without swapping: free memory plus the page cache it can drop)."""
    fields = _kib_fields(text, frozenset({"MemTotal", "MemAvailable"}))
    missing = [name for name in ("MemTotal", "MemAvailable") if name not in fields]
    if missing:
        raise ValueError(f"/proc/meminfo has no {' or '.join(missing)} line")
    return MachineMemory(fields["MemTotal"], fields["MemAvailable"])


def parse_pss(smaps_rollup: str) -> int | None:
    """/proc/<pid>/smaps_rollup: the process's PSS in bytes; None without a Pss line (a zombie,
    a kernel thread)."""
    return _kib_fields(smaps_rollup, frozenset({"Pss"})).get("Pss")


def parse_vm_rss(status: str) -> int | None:
    """/proc/<pid>/status: VmRSS in bytes; None without one (a zombie, a kernel thread)."""
    return _kib_fields(status, frozenset({"VmRSS"})).get("VmRSS")


def parse_parent(stat: str) -> int:
    """/proc/<pid>/stat: the parent's pid. The command name (2nd field, in parentheses) may
    hold spaces and parentheses itself, so fields are counted from its last `)`."""
    _, paren, rest = stat.rpartition(")")
    fields = rest.split()
    if not paren or len(fields) < 2 or not fields[1].isdigit():
        raise ValueError(f"unexpected /proc/<pid>/stat line: {stat[:80]!r}")
    return int(fields[1])


def descendants(pid: int, children: Mapping[int, Iterable[int]]) -> list[int]:
    """`pid`'s children, their children, and so on (not `pid` itself), parents first."""
    found: list[int] = []
    seen = {pid}
    frontier = [pid]
    while frontier:
        parent = frontier.pop(0)
        for child in children.get(parent, ()):
            if child not in seen:  # a pid reused while /proc was read must not loop
                seen.add(child)
                found.append(child)
                frontier.append(child)
    return found


# -- readers ------------------------------------------------------------------------------


def read_machine_memory() -> MachineMemory:
    return parse_meminfo((PROC / "meminfo").read_text())


def children_by_parent() -> dict[int, list[int]]:
    """Every process's children, from one pass over /proc (processes that end meanwhile are
    left out). One pass serves every worker's tree, however many workers there are."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        try:
            parent = parse_parent((PROC / entry.name / "stat").read_text())
        except (OSError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    return children


def process_memory_bytes(pid: int) -> int:
    """One process's PSS; its RSS where smaps_rollup cannot be read (before Linux 4.14, or
    another user's process); 0 when it is gone."""
    with contextlib.suppress(OSError):
        pss = parse_pss((PROC / str(pid) / "smaps_rollup").read_text())
        if pss is not None:
            return pss
    with contextlib.suppress(OSError):
        return parse_vm_rss((PROC / str(pid) / "status").read_text()) or 0
    return 0


def tree_memory_bytes(pid: int, children: Mapping[int, Iterable[int]] | None = None) -> int:
    """PSS of `pid` and all its descendants (a Triton worker is tritonserver and its backend
    stubs). `children`: a children_by_parent() already read, shared by many calls."""
    tree = children if children is not None else children_by_parent()
    return sum(process_memory_bytes(p) for p in [pid, *descendants(pid, tree)])
