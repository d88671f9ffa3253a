"""Table tests of what status reads from the typed IR a region's Envoy ACKed whole."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controlplane import confirmed
from controlplane.ir.model import (
    TIER_GATEWAY,
    Backend,
    Credentials,
    DeploymentRoute,
    Endpoint,
    PublicKey,
    Tier,
)
from controlplane.policy.access import AccessSettings, RateSettings, TokenBucket

W1 = Endpoint("w1", "127.0.0.1", 9001, 9002)
W2 = Endpoint("w2", "127.0.0.1", 9003, 9004, healthy=False)
W3 = Endpoint("w3", "127.0.0.1", 9005, 9006, draining=True)
EU = Endpoint("gateway.eu", "127.0.0.1", 8080, 8080)

SERVED = DeploymentRoute.local("d", "production", (W1, W2, W3))
CANARY = replace(
    SERVED,
    backends=(*SERVED.backends, replace(SERVED.main, track="v2", version="v2")),
)
FORWARDED = DeploymentRoute(
    "d",
    "production",
    (Backend("", "v1", tiers=(Tier("eu", TIER_GATEWAY, 0, (EU,)),), local_endpoints=None),),
)
DEACTIVATED = DeploymentRoute("d", "production", deactivated=True)


@pytest.mark.parametrize(
    ("name", "route", "tracks", "serves", "forwards", "refuses"),
    [
        ("nothing confirmed", None, [""], False, False, False),
        ("served here", SERVED, [""], True, True, False),
        ("a track the route does not have yet", SERVED, ["", "v2"], False, False, False),
        ("both tracks", CANARY, ["", "v2"], True, True, False),
        ("forwarded only", FORWARDED, [""], False, True, False),
        ("deactivated", DEACTIVATED, [""], False, False, True),
    ],
)
def test_what_a_confirmed_route_does(
    name: str,
    route: DeploymentRoute | None,
    tracks: list[str],
    serves: bool,
    forwards: bool,
    refuses: bool,
) -> None:
    assert confirmed.serves(route, tracks) is serves
    assert confirmed.forwards(route, tracks) is forwards
    assert confirmed.refuses(route) is refuses


@pytest.mark.parametrize(
    ("name", "route", "track", "routable"),
    [
        ("healthy and not draining only", SERVED, "", {"w1"}),
        ("no such track", SERVED, "v9", set()),
        ("no workers here", FORWARDED, "", set()),
        ("nothing confirmed", None, "", set()),
    ],
)
def test_routable_workers(
    name: str, route: DeploymentRoute | None, track: str, routable: set[str]
) -> None:
    assert confirmed.routable_workers(route, track) == routable


@pytest.mark.parametrize(
    ("name", "route", "worker", "may"),
    [
        ("healthy", SERVED, "w1", True),
        ("unhealthy: Envoy may still pick it", SERVED, "w2", True),
        ("draining", SERVED, "w3", False),
        ("not listed", SERVED, "w9", False),
        ("a gateway host is not a worker", FORWARDED, "w1", False),
        ("no route", None, "w1", False),
    ],
)
def test_may_route(name: str, route: DeploymentRoute | None, worker: str, may: bool) -> None:
    assert confirmed.may_route(route, worker) is may


OPEN = replace(SERVED, access=AccessSettings.open())
LIMITED = replace(SERVED, rate=RateSettings(deployment=TokenBucket(10, 10)))


@pytest.mark.parametrize(
    ("name", "route", "desired", "enforces"),
    [
        ("nothing meant here", None, None, True),
        ("nothing confirmed yet", None, SERVED, False),
        ("the same rules", SERVED, replace(SERVED, offload_percent=20), True),
        ("access changed, not ACKed yet", SERVED, OPEN, False),
        ("access changed and ACKed", OPEN, OPEN, True),
        ("a rate limit not ACKed yet", SERVED, LIMITED, False),
        ("a rate limit lifted, not ACKed yet", LIMITED, SERVED, False),
    ],
)
def test_enforces_the_access_and_rate_rules_meant(
    name: str, route: DeploymentRoute | None, desired: DeploymentRoute | None, enforces: bool
) -> None:
    assert confirmed.enforces(route, desired) is enforces, name


def _held(*key_ids: str) -> Credentials:
    return Credentials(keys=tuple(PublicKey(k, "x") for k in key_ids))


@pytest.mark.parametrize(
    ("name", "current", "gone", "enforced", "pending"),
    [
        ("active everywhere", "k2", [], ["eu", "us"], []),
        ("active, one region has an older config", "k3", [], ["us"], ["eu"]),
        ("revoked, still taken in eu", "", ["k1", ""], ["us"], ["eu"]),
        ("revoked with its previous secret still in us", "", ["k2", "k3"], [], ["eu", "us"]),
        ("revoked everywhere", "", ["k9"], ["eu", "us"], []),
        ("rotated, the old secret past its grace still in us", "k1", ["k3"], ["eu"], ["us"]),
        ("rotated, the old secret gone everywhere", "k2", ["k9"], ["eu", "us"], []),
    ],
)
def test_key_enforcement(
    name: str, current: str, gone: list[str], enforced: list[str], pending: list[str]
) -> None:
    held = {"eu": _held("k1", "k2"), "us": _held("k2", "k3")}
    assert confirmed.key_enforcement(current, gone, held) == (enforced, pending), name
