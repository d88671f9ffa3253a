"""Which readings of Envoy's admin are applied: a run of misses, never a single one."""

from __future__ import annotations

import pytest

from workers.agent.envoy_process import GatewayView
from workers.agent.gateway_watch import MISSED_READS_UNROUTABLE, after_read

VIEW = GatewayView()
CASES = {
    "a reading is applied and ends a run of misses": ((VIEW, 2), (0, True)),
    "one miss is not applied": ((None, 0), (1, False)),
    "two misses are not applied": ((None, 1), (2, False)),
    "the third miss in a row counts as nothing routable": (
        (None, MISSED_READS_UNROUTABLE - 1),
        (MISSED_READS_UNROUTABLE, True),
    ),
    "and so does every miss after it": ((None, 5), (6, True)),
}


@pytest.mark.parametrize(("given", "expected"), CASES.values(), ids=CASES.keys())
def test_after_read(given: tuple[GatewayView | None, int], expected: tuple[int, bool]) -> None:
    assert after_read(*given) == expected
