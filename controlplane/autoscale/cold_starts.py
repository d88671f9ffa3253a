"""Every cold start: when a region went from zero workers to one its gateway routes to.

Kept in memory for status and exported as Prometheus metrics by the control plane; what users
see is what they paid (first request held → first worker routable).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from meshline.keys import PlacedDeploymentKey


@dataclass(frozen=True)
class ColdStart:
    environment: str
    deployment: str
    region: str
    track: str
    seconds: float


@dataclass
class ColdStartTotals:
    count: int = 0
    seconds_total: float = 0.0
    last_s: float = 0.0


@dataclass
class ColdStartLedger:
    totals: dict[PlacedDeploymentKey, ColdStartTotals] = field(default_factory=dict)
    listeners: list[Callable[[ColdStart], None]] = field(default_factory=list)

    def record(self, cold_start: ColdStart) -> None:
        key = PlacedDeploymentKey(cold_start.environment, cold_start.deployment, cold_start.region)
        totals = self.totals.setdefault(key, ColdStartTotals())
        totals.count += 1
        totals.seconds_total += cold_start.seconds
        totals.last_s = cold_start.seconds
        for listener in self.listeners:
            listener(cold_start)

    def of(self, environment: str, deployment: str, region: str) -> ColdStartTotals:
        return self.totals.get(
            PlacedDeploymentKey(environment, deployment, region), ColdStartTotals()
        )
