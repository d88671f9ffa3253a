"""Saturation-driven offload: how much of a region's traffic goes to other allowed regions.

The signal is Envoy's own counter of requests in flight to each local worker, which the agent
reports about every 0.5 s. From it the controller estimates what the region would carry
without offload (in-flight per replica divided by the share it still keeps) and sends away just
enough to bring each replica back to the policy's threshold, in steps of 10 %, up to the
policy's maximum. It grows at once and shrinks one step per cooldown, so a region that recovers
takes its traffic back within about `max_percent / STEP * COOLDOWN_S` seconds without
flapping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from controlplane.policy import ResolvedDeployment
from meshline.keys import PlacedDeploymentKey
from meshline.v1 import agent_pb2

STEP = 10
COOLDOWN_S = 0.5


def target_percent(inflight_per_replica: float, current: int, threshold: int, cap: int) -> int:
    """The share to send away so that each local replica sees about `threshold` in flight."""
    kept = max(0.05, 1 - current / 100)
    demand = inflight_per_replica / kept
    if demand <= threshold:
        return 0
    wanted = (1 - threshold / demand) * 100
    return min(cap, math.ceil(wanted / STEP) * STEP)


class OffloadController:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._percent: dict[PlacedDeploymentKey, int] = {}
        self._changed_at: dict[PlacedDeploymentKey, float] = {}
        # The load sample each share was last raised on: rebuilds come from ACKs and other
        # regions too, and re-reading one sample against the raised share would escalate.
        self._raised_on: dict[PlacedDeploymentKey, tuple[tuple[str, int], ...]] = {}

    def update(
        self,
        deployments: Iterable[ResolvedDeployment],
        workers: Mapping[str, Sequence[agent_pb2.WorkerReport]],
    ) -> dict[PlacedDeploymentKey, int]:
        """Current offload percent of every (environment, deployment, region) that offloads."""
        now = self._clock()
        seen: set[PlacedDeploymentKey] = set()
        for dep in deployments:
            if not dep.offload.enabled or len(dep.placement.regions) < 2:
                continue
            for region in dep.placement.regions:
                key = PlacedDeploymentKey(dep.environment, dep.name, region)
                seen.add(key)
                local = [
                    w
                    for w in workers.get(region, ())
                    if w.deployment == dep.name
                    and w.environment == dep.environment
                    and w.state == agent_pb2.WORKER_STATE_HEALTHY
                ]
                current = self._percent.get(key, 0)
                sample = tuple(sorted((w.worker_id, w.inflight) for w in local))
                if not local:
                    wanted = 0  # nothing local to relieve: failover already sends it elsewhere
                else:
                    per_replica = sum(w.inflight for w in local) / len(local)
                    wanted = target_percent(
                        per_replica,
                        current,
                        dep.offload.max_inflight_per_replica,
                        dep.offload.max_percent,
                    )
                if wanted > current and sample != self._raised_on.get(key):
                    self._set(key, wanted, now)
                    self._raised_on[key] = sample
                elif wanted < current and now - self._changed_at.get(key, 0.0) >= COOLDOWN_S:
                    self._set(key, max(wanted, current - STEP), now)
        for key in set(self._percent) - seen:
            del self._percent[key]
            self._changed_at.pop(key, None)
            self._raised_on.pop(key, None)
        return {k: v for k, v in self._percent.items() if v > 0}

    def _set(self, key: PlacedDeploymentKey, percent: int, now: float) -> None:
        self._percent[key] = percent
        self._changed_at[key] = now
