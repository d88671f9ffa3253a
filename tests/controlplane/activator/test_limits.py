"""How many requests the activator holds at once: the pure decision, per gateway and in all."""

from __future__ import annotations

import pytest

from controlplane.activator import HeldNow, HoldLimits, over_limit

LIMITS = HoldLimits(per_gateway=2, total=5)


@pytest.mark.parametrize(
    ("held", "refused_for"),
    [
        (HeldNow(0, 0), None),
        (HeldNow(1, 4), None),  # the last place overall, and one left for this gateway
        (HeldNow(2, 2), "already holds 2 requests from gateway 'eu' (at most 2 per gateway)"),
        (HeldNow(0, 5), "already holds 5 requests in all (at most 5)"),
        (HeldNow(2, 5), "from gateway 'eu' (at most 2 per gateway)"),  # the gateway's is named
    ],
)
def test_a_request_is_held_only_below_both_limits(held: HeldNow, refused_for: str | None) -> None:
    refusal = over_limit(LIMITS, held, "eu", "fraud", "production")
    if refused_for is None:
        assert refusal is None
        return
    assert refusal is not None
    assert refusal.startswith("deployment 'fraud' (environment 'production') is waking from zero")
    assert refused_for in refusal and refusal.endswith("; retry shortly")


@pytest.mark.parametrize(("per_gateway", "total"), [(0, 5), (5, 0), (-1, 1)])
def test_limits_below_one_are_refused(per_gateway: int, total: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        HoldLimits(per_gateway, total)
