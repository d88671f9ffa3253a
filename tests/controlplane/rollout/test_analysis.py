"""A canary step's verdict from the canary's and the stable version's traffic (table test)."""

from __future__ import annotations

import pytest

from controlplane.rollout.analysis import LATENCY_FLOOR_MS, TrafficTotals, judge
from controlplane.rollout.settings import CANARY, RolloutSettings

SETTINGS = RolloutSettings(
    strategy=CANARY, max_error_rate_increase=5, max_latency_ratio=2, min_requests=20
)


def traffic(requests: int, p99_ms: float, errors: int = 0) -> TrafficTotals:
    """`requests` answers, all in the histogram bucket bounded by `p99_ms`."""
    return TrafficTotals(requests, errors, ((p99_ms / 2, 0), (p99_ms, requests)))


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
            f"p99 7.5 ms vs 2 ms (limit 10 ms = 2 x max(stable, {LATENCY_FLOOR_MS:g} ms floor))",
            id="under-the-floor-limit",
        ),
        pytest.param(
            traffic(100, 12),
            traffic(100, 2),
            True,
            True,
            "canary p99 latency 12 ms vs stable 2 ms (limit 10 ms",
            id="slower-than-the-floor-allows",
        ),
        pytest.param(
            traffic(100, 50),
            traffic(100, 20),
            True,
            True,
            "limit 40 ms = 2 x max(stable",
            id="slower-than-twice-stable",
        ),
    ],
)
def test_verdicts_name_the_figures_and_the_limit(
    canary: TrafficTotals, stable: TrafficTotals, failed: bool, judged: bool, text: str
) -> None:
    verdict = judge(canary, stable, SETTINGS)
    assert (verdict.failed, verdict.judged) == (failed, judged)
    assert text in verdict.text
