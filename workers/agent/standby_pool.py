"""Warm Torch interpreters, kept so that a worker start (a cold start above all) skips imports.

A Torch worker spends most of its start importing torch, gRPC and aiohttp, whatever the model.
The pool keeps `size` interpreters that have done that already (workers/torch_worker/standby.py)
and hands one the worker's flags when the supervisor starts a Torch worker; the worker then only
loads its model. A standby is prepared only while no worker is starting (the supervisor says
when), so it never takes CPU from a real start, and costs only memory while it waits. One that
dies before it is used is replaced after a growing pause, not in a tight loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from meshline.process import children
from workers.agent.launch import TORCH_WORKER_MODULE
from workers.torch_worker.standby import READY_LINE, Order

log = logging.getLogger(__name__)

STANDBY_MODULE = "workers.torch_worker.standby"
STOP_GRACE_S = 2.0
# After a standby died unused: wait this long (doubling per death in a row, capped) first.
FIRST_RETRY_S = 1.0
MAX_RETRY_S = 60.0


def standby_command() -> list[str]:
    return [sys.executable, "-m", STANDBY_MODULE]


def worker_flags(args: Sequence[str]) -> list[str] | None:
    """The flags of a Torch worker command line (what a standby needs); None for any other
    program, which a standby cannot become."""
    if list(args[:3]) == [sys.executable, "-m", TORCH_WORKER_MODULE]:
        return list(args[3:])
    return None


@dataclass
class Standby:
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.process.returncode is None and self.process.stdin is not None

    @property
    def ready(self) -> bool:
        """Its imports are done (it said so in its log): what it does next is the worker's."""
        try:
            return self.alive and READY_LINE in self.log_path.read_text(errors="replace")
        except OSError:
            return False


@dataclass
class StandbyPool:
    size: int
    log_dir: Path
    _standbys: list[Standby] = field(default_factory=list)
    _made: int = 0
    _deaths_in_a_row: int = 0
    _retry_at: float = 0.0
    _closed: bool = False

    @property
    def ready(self) -> int:
        """Standbys that can become a worker now."""
        self._forget_dead()
        return sum(1 for s in self._standbys if s.ready)

    async def fill(self) -> bool:
        """Start one standby when the pool is short; True when it started one."""
        self._forget_dead()
        if self._closed or len(self._standbys) >= self.size or time.monotonic() < self._retry_at:
            return False
        self._made += 1
        log_path = self.log_dir / f"standby-{self._made}.log"
        try:
            process = await children.spawn(standby_command(), log_path, stdin_pipe=True)
        except OSError as exc:
            log.error("cannot start a standby worker interpreter: %s", exc)
            self._note_death()
            return False
        if self._closed:  # stop() ran while it was being started
            await children.stop(process, STOP_GRACE_S)
            _remove(log_path)
            return False
        self._standbys.append(Standby(process, log_path))
        log.info("standby worker interpreter %d started (pid %s)", self._made, process.pid)
        return True

    async def take(self, args: Sequence[str], log_path: Path) -> asyncio.subprocess.Process | None:
        """A ready standby turned into the worker `args` describes, logging to `log_path`; None
        when none is ready or `args` is not a Torch worker (start it the usual way then)."""
        flags = worker_flags(args)
        if flags is None or self._closed:
            return None
        self._forget_dead()
        for standby in [s for s in self._standbys if s.ready]:
            self._standbys.remove(standby)
            stdin = standby.process.stdin
            assert stdin is not None  # ready implies alive implies a pipe
            children.write_marker(log_path, args)
            try:
                stdin.write(Order(argv=flags, log_path=log_path).encode())
                await stdin.drain()
                stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                await children.stop(standby.process, STOP_GRACE_S)
                continue
            self._deaths_in_a_row = 0
            _remove(standby.log_path)  # only its imports were logged there, and they succeeded
            return standby.process
        return None

    async def stop(self) -> None:
        """Stop every waiting standby; the pool starts no more."""
        self._closed = True
        standbys, self._standbys = self._standbys, []
        await asyncio.gather(*(children.stop(s.process, STOP_GRACE_S) for s in standbys))
        for standby in standbys:
            _remove(standby.log_path)

    def _forget_dead(self) -> None:
        for standby in [s for s in self._standbys if not s.alive]:
            self._standbys.remove(standby)
            log.warning(
                "standby worker interpreter (pid %s) exited with status %s: %s",
                standby.process.pid,
                standby.process.returncode,
                children.exit_reason(standby.log_path),
            )
            _remove(standby.log_path)
            self._note_death()

    def _note_death(self) -> None:
        self._deaths_in_a_row += 1
        pause = min(FIRST_RETRY_S * 2 ** (self._deaths_in_a_row - 1), MAX_RETRY_S)
        self._retry_at = time.monotonic() + pause


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
