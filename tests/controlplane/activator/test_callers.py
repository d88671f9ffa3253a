"""Whose request the activator holds: the region the caller's verified certificate names; a
certificate of no region, or a header naming another region, is refused."""

from __future__ import annotations

import pytest

from controlplane.activator import CallerRefusal, caller_gateway
from meshline import wire


@pytest.mark.parametrize(
    ("certified", "spiffe_id", "claimed", "expected"),
    [
        ("eu", wire.region_spiffe_id("eu"), "eu", "eu"),
        ("eu", wire.region_spiffe_id("eu"), "", "eu"),  # no header: the certificate says it
        (
            "eu",
            wire.region_spiffe_id("eu"),
            "us",
            CallerRefusal(
                "x-meshline-gateway names region 'us', but the client certificate is region 'eu''s"
            ),
        ),
        (
            None,
            wire.CONTROLPLANE_SPIFFE_ID,
            "eu",
            CallerRefusal(
                "the activator holds requests of gateways only: the client certificate names "
                "spiffe://meshline/controlplane, not a region"
            ),
        ),
        (
            None,
            "",
            "",
            CallerRefusal(
                "the activator holds requests of gateways only: the client certificate names "
                "no SPIFFE id, not a region"
            ),
        ),
    ],
)
def test_the_certificate_names_the_gateway(
    certified: str | None, spiffe_id: str, claimed: str, expected: str | CallerRefusal
) -> None:
    assert caller_gateway(certified, spiffe_id, claimed) == expected
