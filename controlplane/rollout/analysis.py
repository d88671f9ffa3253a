"""Canary analysis: one version's traffic against another's over the same stretch. Pure.

The figures are what the gateways saw (requests, errors, Envoy's latency histogram), summed over
every region's gateway, cumulative; a step is judged on the difference since it started.

Latency is judged on evidence, not on one unlucky request: only over the requests the latency
histogram already holds (Envoy flushes it every second, its request counters are live), with the
p99 read as Prometheus's `histogram_quantile` reads it (interpolated inside its bucket, so a bucket
edge does not turn 21 ms vs 15 ms into "30 vs 15"), and over at least TAIL_REQUESTS requests: on a
busy CPU one worker process descheduled for a moment slows the few requests queued at it, and
with one worker per version that alone could double a p99 taken over a few hundred requests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from controlplane.rollout.settings import RolloutSettings

# Latency is judged against at least this stable p99: on an idle CPU both versions answer in
# under a millisecond, and the histogram's bucket bounds alone would look like a 2x slowdown.
LATENCY_FLOOR_MS = 5.0
# A latency tail is read over at least this many requests: the p99 from 1000 requests on; below
# that the latency of the 10th slowest (over 20 requests, the median; over 100, the p91).
TAIL_REQUESTS = 10


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


def latency_samples(totals: TrafficTotals) -> int:
    """How many requests the latency histogram holds (it may lag `requests` by a flush)."""
    return totals.latency[-1][1] if totals.latency else 0


def p99_ms(totals: TrafficTotals) -> float:
    """The 99th percentile, over at least the TAIL_REQUESTS slowest requests (0 with no samples),
    interpolated linearly inside its bucket (Prometheus' `histogram_quantile`), to 0.1 ms."""
    count = latency_samples(totals)
    if count <= 0:
        return 0.0
    rank = max(1.0, min(0.99 * count, count - TAIL_REQUESTS + 1))
    lower, below = 0.0, 0
    for bound, cumulative in totals.latency:
        if cumulative >= rank:
            share = (rank - below) / (cumulative - below) if cumulative > below else 1.0
            return round(lower + (bound - lower) * share, 1)
        lower, below = bound, cumulative
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
    samples = latency_samples(canary)
    if samples < settings.min_requests:
        return Verdict(
            False,
            False,
            f"inconclusive: the latency histogram holds {samples} of {canary.requests} canary "
            f"requests so far (needs {settings.min_requests})",
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
