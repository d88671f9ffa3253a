"""Canary analysis: one version's traffic against another's over the same stretch. Pure.

The figures are what the gateways saw (requests, errors, Envoy's latency histogram), summed over
every region's gateway, cumulative; a step is judged on the difference since it started.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from controlplane.rollout.settings import RolloutSettings

# Latency is judged against at least this stable p99: on an idle CPU both versions answer in
# under a millisecond, and the histogram's bucket bounds alone would look like a 2x slowdown.
LATENCY_FLOOR_MS = 5.0


@dataclass(frozen=True)
class TrafficTotals:
    requests: int = 0
    errors: int = 0
    # (upper bound ms, cumulative count) per histogram bucket, ascending bounds
    latency: tuple[tuple[float, int], ...] = field(default=())

    def __add__(self, other: TrafficTotals) -> TrafficTotals:
        bounds: dict[float, int] = dict(self.latency)
        for bound, count in other.latency:
            bounds[bound] = bounds.get(bound, 0) + count
        return TrafficTotals(
            self.requests + other.requests,
            self.errors + other.errors,
            tuple(sorted(bounds.items())),
        )

    def since(self, start: TrafficTotals) -> TrafficTotals:
        """The stretch from `start` to now; a counter that went down (Envoy restarted)
        counts from zero."""

        def delta(now: int, then: int) -> int:
            return now - then if now >= then else now

        before = dict(start.latency)
        return TrafficTotals(
            delta(self.requests, start.requests),
            delta(self.errors, start.errors),
            tuple((b, delta(c, before.get(b, 0))) for b, c in self.latency),
        )

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def total(parts: Iterable[TrafficTotals]) -> TrafficTotals:
    out = TrafficTotals()
    for part in parts:
        out = out + part
    return out


def p99_ms(totals: TrafficTotals) -> float:
    """The upper bound of the bucket the 99th percentile falls in (0 with no samples)."""
    if not totals.latency:
        return 0.0
    count = totals.latency[-1][1]
    if count <= 0:
        return 0.0
    for bound, cumulative in totals.latency:
        if cumulative >= 0.99 * count:
            return bound
    return totals.latency[-1][0]


@dataclass(frozen=True)
class Verdict:
    failed: bool
    judged: bool  # enough canary requests to say anything
    text: str


def judge(canary: TrafficTotals, stable: TrafficTotals, settings: RolloutSettings) -> Verdict:
    """Worse beyond the thresholds → failed, with the figures that say so."""
    if canary.requests < settings.min_requests:
        return Verdict(
            False,
            False,
            f"inconclusive: {canary.requests} canary requests (needs {settings.min_requests})",
        )
    canary_rate, stable_rate = canary.error_rate * 100, stable.error_rate * 100
    if canary_rate - stable_rate > settings.max_error_rate_increase:
        return Verdict(
            True,
            True,
            f"failed: canary error rate {canary_rate:.1f}% vs stable {stable_rate:.1f}% "
            f"(more than {settings.max_error_rate_increase:g} points worse; "
            f"{canary.errors} of {canary.requests} canary requests failed)",
        )
    canary_p99, stable_p99 = p99_ms(canary), p99_ms(stable)
    limit_ms = settings.max_latency_ratio * max(stable_p99, LATENCY_FLOOR_MS)
    limit = (
        f"limit {limit_ms:g} ms = {settings.max_latency_ratio:g} x max(stable, "
        f"{LATENCY_FLOOR_MS:g} ms floor)"
    )
    if canary_p99 > limit_ms:
        return Verdict(
            True,
            True,
            f"failed: canary p99 latency {canary_p99:g} ms vs stable {stable_p99:g} ms ({limit})",
        )
    return Verdict(
        False,
        True,
        f"passed: error rate {canary_rate:.1f}% vs {stable_rate:.1f}%, p99 {canary_p99:g} ms "
        f"vs {stable_p99:g} ms ({limit})",
    )
