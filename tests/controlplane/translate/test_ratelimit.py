"""Table tests of how a rate becomes an Envoy token bucket (tokens per fill, interval)."""

from __future__ import annotations

import pytest

from controlplane.translate.ratelimit import MIN_FILL_INTERVAL_MS, fill_schedule


@pytest.mark.parametrize(
    ("rps", "expected"),
    [
        (0.001, (1, 1_000_000)),
        (0.5, (1, 2000)),
        (1, (1, 1000)),
        (3, (1, 333)),
        (20, (1, 50)),
        (25, (2, 80)),
        (100, (5, 50)),
        (1000, (50, 50)),
    ],
)
def test_fill_schedule_table(rps: float, expected: tuple[int, int]) -> None:
    assert fill_schedule(rps) == expected


@pytest.mark.parametrize("rps", [0.01, 0.7, 7, 19.9, 21, 33.3, 99.5, 150, 999, 12345, 1_000_000])
def test_fill_schedule_keeps_the_rate_within_one_percent(rps: float) -> None:
    tokens, millis = fill_schedule(rps)
    assert millis >= MIN_FILL_INTERVAL_MS and tokens >= 1
    assert tokens * 1000 / millis == pytest.approx(rps, rel=0.01)
