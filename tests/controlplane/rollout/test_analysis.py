"""A canary step's verdict from the canary's and the stable version's traffic (table test)."""

from __future__ import annotations

import pytest

from controlplane.rollout.analysis import (
    LATENCY_FLOOR_MS,
    TAIL_REQUESTS,
    TrafficTotals,
    judge,
    p99_ms,
)
from controlplane.rollout.settings import CANARY, RolloutSettings

SETTINGS = RolloutSettings(
    strategy=CANARY, max_error_rate_increase=5, max_latency_ratio=2, min_requests=20
)


def traffic(requests: int, bound_ms: float, errors: int = 0) -> TrafficTotals:
    """`requests` answers, all in the histogram bucket (bound_ms / 2, bound_ms]."""
    return TrafficTotals(requests, errors, ((bound_ms / 2, 0), (bound_ms, requests)))


def spread(requests: int, *buckets: tuple[float, int], seen: int | None = None) -> TrafficTotals:
    """`requests` answers (the counter); the histogram holds `seen` of them (all by default),
    `buckets` giving (upper bound ms, answers in that bucket) with the rest at 1 ms or less."""
    seen = requests if seen is None else seen
    slow = sum(n for _, n in buckets)
    cumulative, rows = seen - slow, [(1.0, seen - slow)]
    for bound, n in buckets:
        cumulative += n
        rows.append((bound, cumulative))
    return TrafficTotals(requests, 0, tuple(rows))


@pytest.mark.parametrize(
    ("canary", "stable", "failed", "judged", "text"),
    [
        pytest.param(
            traffic(10, 1),
            traffic(100, 1),
            False,
            False,
            "inconclusive: 10 canary requests",
            id="too-few-requests",
        ),
        pytest.param(
            traffic(100, 1, errors=10),
            traffic(100, 1, errors=1),
            True,
            True,
            "canary error rate 10.0% vs stable 1.0% (more than 5 points worse",
            id="errors",
        ),
        pytest.param(
            traffic(100, 7.5),
            traffic(100, 2),
            False,
            True,
            f"p99 7.2 ms vs 1.9 ms (limit 10 ms = 2 x max(stable, {LATENCY_FLOOR_MS:g} ms floor))",
            id="under-the-floor-limit",
        ),
        pytest.param(
            traffic(100, 12),
            traffic(100, 2),
            True,
            True,
            "canary p99 latency 11.5 ms vs stable 1.9 ms (limit 10 ms",
            id="slower-than-the-floor-allows",
        ),
        pytest.param(
            traffic(100, 50),
            traffic(100, 20),
            True,
            True,
            "limit 38.2 ms = 2 x max(stable",
            id="slower-than-twice-stable",
        ),
        # Envoy flushes its histograms every second, its counters are live: 30 requests counted,
        # 3 in the histogram (the canary's very first) is no p99 yet.
        pytest.param(
            spread(30, (250.0, 3), seen=3),
            spread(300),
            False,
            False,
            "inconclusive: the latency histogram holds 3 of 30 canary requests so far (needs 20)",
            id="latency-histogram-not-flushed-yet",
        ),
        # A worker descheduled for a moment on a busy CPU slows the few requests queued at it:
        # 5 slow requests of 200 are no slower version (a p99 of 200 would be the 2nd slowest).
        pytest.param(
            spread(200, (100.0, 0), (150.0, 5)),
            spread(200, (50.0, 2)),
            False,
            True,
            "passed: error rate 0.0% vs 0.0%, p99 1 ms vs 1 ms",
            id="a-few-slow-requests-do-not-decide",
        ),
        pytest.param(
            spread(200, (100.0, 0), (150.0, 20)),
            spread(200, (50.0, 2)),
            True,
            True,
            "canary p99 latency 127.5 ms vs stable 1 ms",
            id="a-slow-tail-of-enough-requests-fails",
        ),
        # Interpolated inside the bucket, as Prometheus' histogram_quantile: p99 just over 30 ms
        # vs just over 15 ms is not "50 vs 20", the buckets' upper bounds.
        pytest.param(
            spread(1000, (30.0, 989), (50.0, 11)),
            spread(1000, (15.0, 985), (20.0, 15)),
            False,
            True,
            "p99 31.8 ms vs 16.7 ms (limit 33.4 ms",
            id="interpolated-inside-its-bucket",
        ),
    ],
)
def test_verdicts_name_the_figures_and_the_limit(
    canary: TrafficTotals, stable: TrafficTotals, failed: bool, judged: bool, text: str
) -> None:
    verdict = judge(canary, stable, SETTINGS)
    assert (verdict.failed, verdict.judged) == (failed, judged)
    assert text in verdict.text


@pytest.mark.parametrize(
    ("totals", "p99"),
    [
        pytest.param(TrafficTotals(), 0.0, id="no-samples"),
        pytest.param(spread(1000, (20.0, 10), (30.0, 10)), 20.0, id="p99-over-1000-requests"),
        pytest.param(spread(100, (20.0, 0), (30.0, 9)), 1.0, id="9-slow-of-100-are-no-tail"),
        pytest.param(spread(100, (20.0, 0), (30.0, 10)), 21.0, id="10-slow-of-100-are"),
        pytest.param(spread(5, (20.0, 0), (40.0, 5)), 24.0, id="fewer-than-10-all-slow"),
    ],
)
def test_p99_needs_a_tail_of_several_requests(totals: TrafficTotals, p99: float) -> None:
    assert TAIL_REQUESTS == 10
    assert p99_ms(totals) == p99
