"""The form of a route a region's Envoy accepted survives the store: every route the
translation cases hold comes back equal."""

from __future__ import annotations

import pytest

from controlplane.ir.codec import route_from_json, route_to_json
from tests.controlplane.translate.cases import CASES


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_route_round_trips(case: str) -> None:
    for route in CASES[case].routes:
        assert route_from_json(route_to_json(route)) == route


@pytest.mark.parametrize("text", ["{}", '{"deployment": 3}', "[]"])
def test_what_is_not_a_route_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a stored route"):
        route_from_json(text)
