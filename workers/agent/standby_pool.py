"""Warm Torch interpreters, kept so that a worker start (a cold start above all) skips imports.

A Torch worker spends most of its start importing torch, gRPC and aiohttp, whatever the model.
The pool keeps `size` interpreters that have done that already (workers/torch_worker/standby.py)
and hands one the worker's flags when the supervisor starts a Torch worker; the worker then only
loads its model. A standby is prepared only while no worker is starting (the supervisor says
when), so it never takes CPU from a real start, and costs only memory while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workers.agent import children
from workers.torch_worker.standby import WORKER_MODULE, Order

log = logging.getLogger(__name__)

STANDBY_MODULE = "workers.torch_worker.standby"
STOP_GRACE_S = 2.0


def standby_command() -> list[str]:
    return [sys.executable, "-m", STANDBY_MODULE]


def worker_flags(args: Sequence[str]) -> list[str] | None:
    """The flags of a Torch worker command line (what a standby needs); None for any other
    program, which a standby cannot become."""
    if len(args) >= 3 and args[0] == sys.executable and list(args[1:3]) == ["-m", WORKER_MODULE]:
        return list(args[3:])
    return None


@dataclass
class StandbyPool:
    size: int
    log_dir: Path
    _waiting: list[tuple[asyncio.subprocess.Process, Path]] = field(default_factory=list)
    _made: int = 0
    _closed: bool = False

    @property
    def ready(self) -> int:
        """Standbys alive and waiting for an order."""
        self._forget_dead()
        return len(self._waiting)

    async def fill(self) -> bool:
        """Start one standby when the pool is short; True when it started one."""
        if self._closed or self.ready >= self.size:
            return False
        self._made += 1
        log_path = self.log_dir / f"standby-{self._made}.log"
        try:
            process = await children.spawn(standby_command(), log_path, stdin_pipe=True)
        except OSError as exc:
            log.error("cannot start a standby worker interpreter: %s", exc)
            return False
        self._waiting.append((process, log_path))
        log.info("standby worker interpreter %d started (pid %s)", self._made, process.pid)
        return True

    async def take(self, args: Sequence[str], log_path: Path) -> asyncio.subprocess.Process | None:
        """A standby turned into the worker `args` describes, logging to `log_path`; None when
        the pool is empty or `args` is not a Torch worker (start it the usual way then)."""
        flags = worker_flags(args)
        if flags is None:
            return None
        self._forget_dead()
        while self._waiting:
            process, standby_log = self._waiting.pop(0)
            if process.stdin is None:
                continue
            children.write_marker(log_path, args)
            try:
                process.stdin.write(Order(argv=flags, log_path=log_path).encode())
                await process.stdin.drain()
                process.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                await children.stop(process, STOP_GRACE_S)
                continue
            with contextlib.suppress(OSError):
                standby_log.unlink()
            return process
        return None

    async def stop(self) -> None:
        """Stop every waiting standby; the pool starts no more."""
        self._closed = True
        waiting, self._waiting = self._waiting, []
        await asyncio.gather(*(children.stop(p, STOP_GRACE_S) for p, _ in waiting))
        for _, standby_log in waiting:
            with contextlib.suppress(OSError):
                standby_log.unlink()

    def _forget_dead(self) -> None:
        alive = []
        for process, standby_log in self._waiting:
            if process.returncode is None:
                alive.append((process, standby_log))
            else:
                log.warning(
                    "standby worker interpreter (pid %s) exited with status %s: %s",
                    process.pid,
                    process.returncode,
                    children.exit_reason(standby_log),
                )
        self._waiting = alive
