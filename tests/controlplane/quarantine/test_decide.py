"""Attributing a rejected update to one deployment, and what each region's config then holds."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import pytest

from controlplane.ir.model import DeploymentRoute, Endpoint
from controlplane.policy.settings import HealthCheckSettings
from controlplane.quarantine.decide import (
    ACKED,
    PENDING,
    Outcome,
    Pushed,
    Quarantine,
    RegionState,
    RouteKey,
    Verdict,
    compose,
    decide,
)

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
WORKER = Endpoint("w1", "127.0.0.1", 9000, 9001)
A, B, C = ("production", "a"), ("production", "b"), ("production", "c")
FINGERPRINTS = {A: "fa", B: "fb", C: "fc"}


def route(key: RouteKey, timeout_s: float = 2.0, port: int = 9000) -> DeploymentRoute:
    environment, name = key
    worker = Endpoint("w1", "127.0.0.1", port, port + 1)
    return DeploymentRoute.local(
        name, environment, [worker], health_check=HealthCheckSettings(timeout_s=timeout_s)
    )


OLD = {A: route(A), B: route(B), C: route(C)}
NEW = {A: route(A, 3.0), B: route(B, 1e11), C: route(C, port=9100)}


def routes(**forms: str) -> Mapping[RouteKey, DeploymentRoute]:
    """routes(a="old", b="new"): each deployment at its old or new form."""
    table = {"old": OLD, "new": NEW}
    return MappingProxyType({(k := ("production", n)): table[f][k] for n, f in forms.items()})


def owned(pushed: Mapping[RouteKey, DeploymentRoute]) -> Mapping[str, RouteKey]:
    """Two clusters per deployment, as translate names them (the test only needs owners)."""
    return {f"{k[1]}.{k[0]}.{kind}": k for k in pushed for kind in ("grpc", "http")}


def pushed(**forms: str) -> Pushed:
    config = routes(**forms)
    return Pushed(config, MappingProxyType(owned(config)))


def rejected(*changed: str, type_url: str = CDS) -> Verdict:
    return Verdict(Outcome.REJECTED, type_url, "7.5", "Duration out-of-range", frozenset(changed))


def quarantine(fingerprint: str, type_url: str = CDS) -> Quarantine:
    return Quarantine(fingerprint, type_url, "7.5", "Duration out-of-range")


@pytest.mark.parametrize(
    ("case", "state", "push", "verdict", "expected"),
    [
        (
            "an ACK makes the pushed config the accepted one",
            RegionState(accepted=routes(a="old")),
            pushed(a="old", b="new"),
            ACKED,
            RegionState(accepted=routes(a="old", b="new")),
        ),
        (
            "one deployment changed since the accepted config: it is the one",
            RegionState(accepted=routes(a="old")),
            pushed(a="old", b="new"),
            rejected("b.production.grpc", "b.production.http"),
            RegionState(
                accepted=routes(a="old"),
                quarantined={B: quarantine("fb")},
                blame=frozenset({B}),
            ),
        ),
        (
            "several changed, but only one owns what the rejected CDS changed",
            RegionState(accepted=routes(a="old", c="old")),
            pushed(a="old", b="new", c="new"),
            rejected("b.production.grpc"),
            RegionState(
                accepted=routes(a="old", c="old"),
                quarantined={B: quarantine("fb")},
                blame=frozenset({B}),
            ),
        ),
        (
            "the shared route table changed: bisect, the first half at its new form",
            RegionState(accepted=routes(a="old", c="old")),
            pushed(a="new", b="new", c="new"),
            rejected("gateway", type_url=RDS),
            RegionState(
                accepted=routes(a="old", c="old"),
                suspects=(A, B, C),
                trying=frozenset({A, B}),
                blame=frozenset({A, B, C}),
            ),
        ),
        (
            "bisecting, the tried half is ACKed: it is accepted, the rest is tried",
            RegionState(
                accepted=routes(a="old", c="old"),
                suspects=(A, B, C),
                trying=frozenset({A, B}),
                blame=frozenset({A, B, C}),
            ),
            pushed(a="new", b="new", c="old"),
            ACKED,
            RegionState(
                accepted=routes(a="new", b="new", c="old"), suspects=(C,), trying=frozenset({C})
            ),
        ),
        (
            "bisecting, the tried half is rejected: narrowed to it",
            RegionState(
                accepted=routes(a="old", c="old"),
                suspects=(A, B, C),
                trying=frozenset({A, B}),
            ),
            pushed(a="new", b="new", c="old"),
            rejected("gateway", type_url=RDS),
            RegionState(
                accepted=routes(a="old", c="old"),
                suspects=(A, B),
                trying=frozenset({A}),
                blame=frozenset({A, B}),
            ),
        ),
        (
            "bisecting, one tried and rejected: found",
            RegionState(accepted=routes(a="new", c="old"), suspects=(B,), trying=frozenset({B})),
            pushed(a="new", b="new", c="old"),
            rejected("gateway", type_url=RDS),
            RegionState(
                accepted=routes(a="new", c="old"),
                quarantined={B: quarantine("fb", RDS)},
                blame=frozenset({B}),
            ),
        ),
        (
            "bisecting, the last suspects are ACKed after all: back to full pushes",
            RegionState(accepted=routes(a="old"), suspects=(B,), trying=frozenset({B})),
            pushed(a="old", b="new"),
            ACKED,
            RegionState(accepted=routes(a="old", b="new")),
        ),
        (
            "nothing changed since the accepted config: nobody to blame but everyone",
            RegionState(accepted=routes(a="old")),
            pushed(a="old"),
            rejected("gateway", type_url=RDS),
            RegionState(accepted=routes(a="old")),
        ),
        (
            "no answer yet: nothing changes",
            RegionState(accepted=routes(a="old"), suspects=(B, C), trying=frozenset({B})),
            pushed(a="old", b="new"),
            PENDING,
            RegionState(accepted=routes(a="old"), suspects=(B, C), trying=frozenset({B})),
        ),
    ],
)
def test_decide(
    case: str, state: RegionState, push: Pushed, verdict: Verdict, expected: RegionState
) -> None:
    got = decide(state, push, verdict, FINGERPRINTS)
    assert got == expected, case


@pytest.mark.parametrize(
    ("case", "fingerprints", "kept"),
    [
        ("the deployment did not change: still out", FINGERPRINTS, True),
        ("its configuration changed: tried again", {**FINGERPRINTS, B: "fb2"}, False),
        ("it was deleted: forgotten", {A: "fa"}, False),
    ],
)
def test_a_quarantine_lasts_until_the_deployment_changes(
    case: str, fingerprints: dict[RouteKey, str], kept: bool
) -> None:
    state = RegionState(accepted=routes(a="old"), quarantined={B: quarantine("fb")})
    got = decide(state, pushed(a="old"), PENDING, fingerprints)
    assert (B in got.quarantined) is kept, case


def test_a_suspect_deleted_while_bisecting_is_dropped_and_the_next_half_tried() -> None:
    state = RegionState(accepted=routes(a="old"), suspects=(B, C), trying=frozenset({B}))
    got = decide(state, pushed(a="old", b="new"), PENDING, {A: "fa", C: "fc"})
    assert got.suspects == (C,) and got.trying == {C}


def test_without_any_config_pushed_yet_nothing_is_decided() -> None:
    state = RegionState(quarantined={B: quarantine("fb")})
    assert decide(state, None, rejected("b.production.grpc"), FINGERPRINTS) == state


@pytest.mark.parametrize(
    ("case", "state", "expected"),
    [
        (
            "nothing rejected: the current routes",
            RegionState(accepted=routes(a="old")),
            routes(a="new", b="new", c="new"),
        ),
        (
            "a quarantined deployment is left out, the rest goes at its current form",
            RegionState(accepted=routes(a="old"), quarantined={B: quarantine("fb")}),
            routes(a="new", c="new"),
        ),
        (
            "bisecting: tried ones new, others at their accepted form, new untried ones out",
            RegionState(accepted=routes(a="old", c="old"), suspects=(A, B), trying=frozenset({B})),
            routes(a="old", b="new", c="old"),
        ),
    ],
)
def test_compose(
    case: str, state: RegionState, expected: Mapping[RouteKey, DeploymentRoute]
) -> None:
    current = [NEW[A], NEW[B], NEW[C]]
    got = compose(state, current)
    assert {(r.environment, r.deployment): r for r in got} == dict(expected), case


def test_compose_keeps_unchanged_routes_while_bisecting() -> None:
    state = RegionState(accepted=routes(a="old", c="new"), suspects=(B,), trying=frozenset())
    got = compose(state, [OLD[A], NEW[B], NEW[C]])
    assert got == (OLD[A], NEW[C])
