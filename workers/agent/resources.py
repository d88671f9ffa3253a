"""What the region's machine has and what its workers use, for the agent's report.

Reads are cached so that a report (at every change, hundreds of workers) costs only a lookup:
the machine's memory is read at most every MACHINE_MEMORY_EVERY_S, when a report asks for it;
the workers' memory and the GPUs are read by `run`, a task of their own, so that neither a slow
nvidia-smi nor a /proc pass over many workers ever holds up the supervisor's loop or a report.

Reading a process's PSS makes the kernel walk its page tables (about 10 ms for a Torch worker
on the test machine): a pass over all workers runs in a thread, and the next one waits long
enough that measuring takes at most MEASURE_SHARE of one CPU (every WORKER_MEMORY_EVERY_S with
a few workers, less often with hundreds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from meshline.v1 import agent_pb2
from workers.agent.gpu_memory import Gpu, GpuQueryError, query_gpus
from workers.agent.proc_memory import (
    MachineMemory,
    children_by_parent,
    read_machine_memory,
    tree_memory_bytes,
)

log = logging.getLogger(__name__)

MACHINE_MEMORY_EVERY_S = 1.0
WORKER_MEMORY_EVERY_S = 2.0
MEASURE_SHARE = 0.1  # of one CPU, at most, spent reading the workers' memory
GPU_EVERY_S = 10.0
NVIDIA_SMI_TIMEOUT_S = 2.0


def next_pass_in(spent_s: float, every_s: float, share: float) -> float:
    """Seconds to wait after a measuring pass that took `spent_s`: passes start at most every
    `every_s`, and measuring takes at most `share` of the time."""
    return max(every_s - spent_s, spent_s / share - spent_s)


def usable_cpus() -> int:
    """CPUs this process (and so the workers it starts) may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class Measured:
    """A worker's memory, and which process it was measured on (a restart is another one)."""

    pid: int
    memory_bytes: int


def measure_trees(pids: Mapping[str, int]) -> dict[str, Measured]:
    """Each worker's process tree's PSS, from one read of who is whose child (blocking I/O)."""
    children = children_by_parent()
    return {worker: Measured(pid, tree_memory_bytes(pid, children)) for worker, pid in pids.items()}


@dataclass
class ResourceWatch:
    # The workers meshline runs that have a process now: worker id -> pid (no external ones).
    worker_pids: Callable[[], dict[str, int]]
    # nvidia-smi's path; None: no NVIDIA GPUs to report.
    nvidia_smi: str | None = field(default_factory=lambda: shutil.which("nvidia-smi"))
    _measured: dict[str, Measured] = field(default_factory=dict)
    _gpus: list[Gpu] = field(default_factory=list)
    _memory: MachineMemory | None = None
    _memory_read_at: float = float("-inf")
    _cpus: int = field(default_factory=usable_cpus)
    _warned: set[str] = field(default_factory=set)

    def memory_of(self, worker_id: str, pid: int | None) -> int:
        """The worker's last measured memory; 0 before its process (this one) was measured."""
        measured = self._measured.get(worker_id)
        if measured is None or pid is None or measured.pid != pid:
            return 0
        return measured.memory_bytes

    def machine(self) -> agent_pb2.MachineResources:
        now = time.monotonic()
        if now - self._memory_read_at >= MACHINE_MEMORY_EVERY_S:
            self._memory_read_at = now
            try:
                self._memory = read_machine_memory()
            except (OSError, ValueError) as exc:  # not Linux, or an unknown /proc format
                self._warn_once("meminfo", f"cannot read the machine's memory: {exc}")
                self._memory = None
        memory = self._memory or MachineMemory(0, 0)
        return agent_pb2.MachineResources(
            memory_total_bytes=memory.total_bytes,
            memory_available_bytes=memory.available_bytes,
            cpus=self._cpus,
            gpus=[
                agent_pb2.GpuMemory(name=g.name, total_bytes=g.total_bytes, used_bytes=g.used_bytes)
                for g in self._gpus
            ],
        )

    async def run(self) -> None:
        """Measure the workers and the GPUs until cancelled."""
        gpus = asyncio.create_task(self._watch_gpus(), name="gpu-memory")
        try:
            await self._watch_workers()
        finally:
            gpus.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gpus

    async def measure_workers(self) -> None:
        """One pass over the workers running now (in a thread)."""
        self._measured = await asyncio.to_thread(measure_trees, self.worker_pids())

    async def _watch_workers(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.measure_workers()
            except Exception:  # an unexpected /proc must not end the measuring
                log.exception("cannot measure the workers' memory")
            spent = time.monotonic() - started
            await asyncio.sleep(next_pass_in(spent, WORKER_MEMORY_EVERY_S, MEASURE_SHARE))

    async def _watch_gpus(self) -> None:
        if self.nvidia_smi is None:
            return
        while True:
            try:
                self._gpus = await query_gpus(self.nvidia_smi, NVIDIA_SMI_TIMEOUT_S)
            except GpuQueryError as exc:  # the last reading stays: a GPU does not vanish
                self._warn_once("nvidia-smi", f"cannot read the GPUs' memory: {exc}")
            await asyncio.sleep(GPU_EVERY_S)

    def _warn_once(self, what: str, message: str) -> None:
        """The first failure of each kind is a warning; its repeats would only flood the log."""
        if what in self._warned:
            log.debug("%s", message)
            return
        self._warned.add(what)
        log.warning("%s", message)
