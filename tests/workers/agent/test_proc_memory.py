"""Memory from /proc: the parsers on the kernel's own formats, and real process trees."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.harness.processes import managed, wait_until
from workers.agent.proc_memory import (
    MachineMemory,
    children_by_parent,
    descendants,
    parse_meminfo,
    parse_parent,
    parse_pss,
    parse_vm_rss,
    process_memory_bytes,
    read_machine_memory,
    tree_memory_bytes,
)

MIB = 1 << 20

MEMINFO = """\
MemTotal:       24683472 kB
MemFree:        21689284 kB
MemAvailable:   23666528 kB
Buffers:           53412 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
"""

SMAPS_ROLLUP = """\
55b52eeca000-7fff0d250000 ---p 00000000 00:00 0                          [rollup]
Rss:              285052 kB
Pss:              207878 kB
Pss_Dirty:        196196 kB
Pss_Anon:         196196 kB
Shared_Clean:      88836 kB
SwapPss:               0 kB
"""

STATUS = """\
Name:\tpython
State:\tS (sleeping)
Pid:\t4242
PPid:\t17
VmPeak:\t  301000 kB
VmRSS:\t  285052 kB
Threads:\t3
"""

# A zombie's status has no Vm* lines, and its smaps_rollup is empty.
ZOMBIE_STATUS = "Name:\tpython\nState:\tZ (zombie)\nPid:\t4243\nPPid:\t17\nThreads:\t1\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MEMINFO, MachineMemory(24683472 * 1024, 23666528 * 1024)),
        ("MemAvailable: 2 kB\nMemTotal: 4 kB\n", MachineMemory(4096, 2048)),
    ],
)
def test_meminfo_gives_total_and_available_bytes(text: str, expected: MachineMemory) -> None:
    assert parse_meminfo(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("MemTotal: 4 kB\nMemFree: 1 kB\n", "no MemAvailable line"),
        ("MemFree: 1 kB\n", "no MemTotal or MemAvailable line"),
        ("MemTotal: lots\nMemAvailable: 1 kB\n", "unexpected MemTotal line"),
        ("MemTotal: 4 MB\nMemAvailable: 1 kB\n", "unexpected MemTotal line"),
        ("MemTotal:\nMemAvailable: 1 kB\n", "unexpected MemTotal line"),
    ],
)
def test_meminfo_without_its_figures_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_meminfo(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SMAPS_ROLLUP, 207878 * 1024),  # Pss, not Rss nor Pss_Dirty / SwapPss
        ("", None),  # a zombie
    ],
)
def test_smaps_rollup_gives_pss_bytes(text: str, expected: int | None) -> None:
    assert parse_pss(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [(STATUS, 285052 * 1024), (ZOMBIE_STATUS, None)],
)
def test_status_gives_vm_rss_bytes(text: str, expected: int | None) -> None:
    assert parse_vm_rss(text) == expected


@pytest.mark.parametrize(
    ("text", "parent"),
    [
        ("4242 (python) S 17 4242 4242 0 -1 4194560 1000 0 0 0", 17),
        # The command name is the process's to choose: spaces and parentheses included.
        ("4243 (a) b (c) R 1 4243 4243 0 -1", 1),
        ("2 (kthreadd) S 0 0 0 0 -1 2129984", 0),
    ],
)
def test_stat_gives_the_parent(text: str, parent: int) -> None:
    assert parse_parent(text) == parent


@pytest.mark.parametrize("text", ["", "4242 python S 17", "4242 (python) S"])
def test_a_stat_line_without_a_parent_names_the_problem(text: str) -> None:
    with pytest.raises(ValueError, match="unexpected /proc/<pid>/stat line"):
        parse_parent(text)


@pytest.mark.parametrize(
    ("children", "pid", "expected"),
    [
        ({}, 1, []),
        ({1: [2, 3], 2: [4], 4: [5], 9: [10]}, 1, [2, 3, 4, 5]),
        ({1: [2, 3], 2: [4]}, 2, [4]),
        ({1: [2], 2: [1]}, 1, [2]),  # a pid reused while /proc was read: no loop
    ],
)
def test_descendants_are_children_and_theirs(
    children: dict[int, list[int]], pid: int, expected: list[int]
) -> None:
    assert descendants(pid, children) == expected


# -- real processes ------------------------------------------------------------------------

# Each holds memory it wrote (written pages are resident; an untouched allocation is not),
# says so in the log, and waits for a signal (the harness stops the whole process group).
CHILD = (
    "import os, signal\n"
    "held = b'c' * (30 << 20)\n"
    "print('child ready', os.getpid(), flush=True)\n"
    "signal.pause()\n"
)
PARENT = (
    "import signal, subprocess, sys\n"
    "held = b'p' * (50 << 20)\n"
    f"child = subprocess.Popen([sys.executable, '-c', {CHILD!r}])\n"
    "print('parent ready', flush=True)\n"
    "signal.pause()\n"
)


def test_machine_memory_is_read() -> None:
    memory = read_machine_memory()
    assert 0 < memory.available_bytes <= memory.total_bytes


def test_a_process_tree_counts_its_own_memory_and_its_childs(tmp_path: Path) -> None:
    with managed("tree", [sys.executable, "-c", PARENT], tmp_path) as tree:

        def ready() -> re.Match[str] | None:
            log = tree.log()
            return re.search(r"child ready (\d+)", log) if "parent ready" in log else None

        wait_until(lambda: ready() is not None, what="both processes to hold their memory")
        match = ready()
        assert match is not None
        child = int(match.group(1))

        children = children_by_parent()
        assert descendants(tree.pid, children) == [child]
        own = process_memory_bytes(tree.pid)
        childs = process_memory_bytes(child)
        assert own >= 50 * MIB and childs >= 30 * MIB
        whole = tree_memory_bytes(tree.pid)
        assert whole >= 80 * MIB
        # The child is counted once, in its parent's tree (it may have changed a little since).
        assert abs(whole - (own + childs)) < 8 * MIB
        assert tree_memory_bytes(child) < whole - 40 * MIB


def test_a_process_that_is_gone_uses_nothing() -> None:
    # A pid above the kernel's maximum: never a process.
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert process_memory_bytes(pid_max + 1) == 0
    assert tree_memory_bytes(pid_max + 1) == 0


SHARING = (
    "import os, signal\n"
    "held = b's' * (60 << 20)\n"
    "child = os.fork()\n"  # the child shares every page of `held` (copy on write)
    "if child == 0:\n"
    "    signal.pause()\n"
    "    os._exit(0)\n"
    "print('forked', child, flush=True)\n"
    "signal.pause()\n"
)


def test_pages_shared_in_a_tree_count_once(tmp_path: Path) -> None:
    """A worker that became a standby shares pages the way a forked child does: PSS splits
    them, where RSS would count the 60 MiB twice."""
    with managed("sharing", [sys.executable, "-c", SHARING], tmp_path) as tree:
        wait_until(lambda: "forked" in tree.log(), what="the fork")
        match = re.search(r"forked (\d+)", tree.log())
        assert match is not None
        child = int(match.group(1))
        rss = [parse_vm_rss(Path(f"/proc/{p}/status").read_text()) or 0 for p in (tree.pid, child)]
        assert min(rss) >= 60 * MIB  # each maps all of it
        whole = tree_memory_bytes(tree.pid)
        assert 60 * MIB <= whole < 60 * MIB + 30 * MIB < sum(rss)
