"""Reads the region's Envoy's view of its hosts on its own cadence: I/O only.

A worker slow to answer its health check (busy, i.e. exactly when load matters) must not
delay the in-flight counts, so the gateway is read by its own task, every probe interval, and
at once (then every FAST_PROBE_S) while a healthy worker waits for the gateway to route it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from workers.agent.envoy_process import GatewayView

log = logging.getLogger(__name__)

# A starting worker is probed, and the gateway re-read while a healthy one is not routable yet,
# this often: a cold start (a client is waiting) must not lose half a probe interval twice.
FAST_PROBE_S = 0.05
# Consecutive unanswered reads of the gateway's admin API before its hosts count as unroutable.
MISSED_READS_UNROUTABLE = 3


def after_read(view: GatewayView | None, missed: int) -> tuple[int, bool]:
    """(reads missed in a row now, whether to apply this reading). One admin read that timed
    out on a busy machine says nothing about the workers: reporting them unroutable would make
    every other region's gateway drop this region at once. Only a run of misses (Envoy gone)
    counts."""
    missed = 0 if view is not None else missed + 1
    return missed, view is not None or missed >= MISSED_READS_UNROUTABLE


@dataclass
class GatewayWatch:
    read: Callable[[], Awaitable[GatewayView | None]]
    apply: Callable[[GatewayView | None], object]
    # A worker is healthy but the gateway does not route to it yet (it soon will).
    awaiting: Callable[[], bool]
    interval_s: float
    # Set when a worker just turned healthy: read now, not after the interval's sleep.
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        missed = 0
        while True:
            try:
                view = await self.read()
                missed, apply = after_read(view, missed)
                if apply:
                    self.apply(view)
            except Exception:  # a bad read must not stop the next ones
                log.exception("cannot read the gateway's view of the workers")
            fast = self.awaiting()
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), FAST_PROBE_S if fast else self.interval_s)
