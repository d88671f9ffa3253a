"""Attributing a rejected update to one deployment, and what each region's config then holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

import pytest

from controlplane.ir.model import DeploymentRoute, Endpoint
from controlplane.policy.settings import HealthCheckSettings
from controlplane.quarantine.decide import (
    ACKED,
    PENDING,
    Check,
    Outcome,
    Pushed,
    Quarantine,
    RegionState,
    Verdict,
    checked,
    compose,
    decide,
)
from meshline.keys import DeploymentKey

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
WORKER = Endpoint("w1", "127.0.0.1", 9000, 9001)
A, B, C = ("production", "a"), ("production", "b"), ("production", "c")
FINGERPRINTS = {A: "fa", B: "fb", C: "fc"}


def route(key: DeploymentKey, timeout_s: float = 2.0, port: int = 9000) -> DeploymentRoute:
    environment, name = key
    worker = Endpoint("w1", "127.0.0.1", port, port + 1)
    return DeploymentRoute.local(
        name, environment, [worker], health_check=HealthCheckSettings(timeout_s=timeout_s)
    )


OLD = {A: route(A), B: route(B), C: route(C)}
NEW = {A: route(A, 3.0), B: route(B, 1e11), C: route(C, port=9100)}


def routes(**forms: str) -> Mapping[DeploymentKey, DeploymentRoute]:
    """routes(a="old", b="new"): each deployment at its old or new form."""
    table = {"old": OLD, "new": NEW}
    return MappingProxyType({(k := ("production", n)): table[f][k] for n, f in forms.items()})


def owned(pushed: Mapping[DeploymentKey, DeploymentRoute]) -> Mapping[str, DeploymentKey]:
    """Two clusters per deployment, as translate names them (the test only needs owners)."""
    return {f"{k[1]}.{k[0]}.{kind}": k for k in pushed for kind in ("grpc", "http")}


def pushed(**forms: str) -> Pushed:
    config = routes(**forms)
    return Pushed(config, MappingProxyType(owned(config)))


def rejected(*changed: str, type_url: str = CDS) -> Verdict:
    return Verdict(Outcome.REJECTED, type_url, "7.5", "Duration out-of-range", frozenset(changed))


def quarantine(fingerprint: str, type_url: str = CDS, kept: str = "") -> Quarantine:
    return Quarantine(fingerprint, type_url, "7.5", "Duration out-of-range", kept)


def check(verdict: Verdict, **forms: str) -> Check:
    """An offline check of these suspects, at the forms given, with their fingerprints."""
    suspects = routes(**forms)
    return Check(verdict, suspects, MappingProxyType({k: FINGERPRINTS[k] for k in suspects}))


def baseline(*keys: DeploymentKey) -> Mapping[DeploymentKey, str]:
    return MappingProxyType({k: FINGERPRINTS[k] for k in keys})


OWNED_BY_B = rejected("b.production.grpc", "b.production.http")
LISTENER_REJECTED = rejected("gateway", type_url=LDS)
TABLE_REJECTED = rejected("gateway", type_url=RDS)


@pytest.mark.parametrize(
    ("case", "state", "push", "verdict", "expected"),
    [
        (
            "an ACK makes the pushed config the accepted one, and its fingerprints the baseline",
            RegionState(accepted=routes(a="old")),
            pushed(a="old", b="new"),
            ACKED,
            RegionState(accepted=routes(a="old", b="new"), baseline=baseline(A, B)),
        ),
        (
            "everything the rejected CDS changed is one deployment's own: it is the one",
            RegionState(accepted=routes(a="old")),
            pushed(a="old", b="new"),
            OWNED_BY_B,
            RegionState(
                accepted=routes(a="old"),
                quarantined={B: quarantine("fb")},
                rejected="7.5",
                blame=frozenset({B}),
            ),
        ),
        (
            "a deployment Envoy accepted before is rejected: quarantined, kept at that form",
            RegionState(accepted=routes(a="old", b="old")),
            pushed(a="old", b="new"),
            OWNED_BY_B,
            RegionState(
                accepted=routes(a="old", b="old"),
                quarantined={B: quarantine("fb", kept="v1")},
                rejected="7.5",
                blame=frozenset({B}),
            ),
        ),
        (
            "its accepted form is ACKed again: the baseline keeps that form's fingerprint",
            RegionState(
                accepted=routes(a="old", b="old"),
                baseline=MappingProxyType({A: "fa", B: "fb-old"}),
                quarantined={B: quarantine("fb", kept="v1")},
            ),
            pushed(a="new", b="old"),
            ACKED,
            RegionState(
                accepted=routes(a="new", b="old"),
                baseline=MappingProxyType({A: "fa", B: "fb-old"}),
                quarantined={B: quarantine("fb", kept="v1")},
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
                rejected="7.5",
                blame=frozenset({B}),
            ),
        ),
        (
            "a fresh stream names everything changed; one deployment differs from the baseline",
            RegionState(accepted=routes(a="old", c="old")),
            pushed(a="old", b="new", c="old"),
            rejected(*owned(routes(a="old", b="new", c="old"))),
            RegionState(
                accepted=routes(a="old", c="old"),
                quarantined={B: quarantine("fb")},
                rejected="7.5",
                blame=frozenset({B}),
            ),
        ),
        (
            "a listener was rejected and one deployment changed: not blamed, checked offline",
            RegionState(accepted=routes(a="old")),
            pushed(a="old", b="new"),
            LISTENER_REJECTED,
            RegionState(
                accepted=routes(a="old"),
                check=check(LISTENER_REJECTED, b="new"),
                rejected="7.5",
            ),
        ),
        (
            "the shared route table changed: every changed deployment is checked offline",
            RegionState(accepted=routes(a="old", c="old")),
            pushed(a="new", b="new", c="new"),
            TABLE_REJECTED,
            RegionState(
                accepted=routes(a="old", c="old"),
                check=check(TABLE_REJECTED, a="new", b="new", c="new"),
                rejected="7.5",
            ),
        ),
        (
            "what the CDS changed belongs to two deployments: those two are checked",
            RegionState(accepted=routes(a="old", c="old")),
            pushed(a="new", b="new", c="new"),
            rejected("b.production.grpc", "c.production.grpc"),
            RegionState(
                accepted=routes(a="old", c="old"),
                check=check(rejected("b.production.grpc", "c.production.grpc"), b="new", c="new"),
                rejected="7.5",
            ),
        ),
        (
            "no baseline at all (a region that never ACKed a config of ours): all are checked",
            RegionState(),
            pushed(a="old", b="new"),
            TABLE_REJECTED,
            RegionState(check=check(TABLE_REJECTED, a="old", b="new"), rejected="7.5"),
        ),
        (
            "after a restart the stored baseline says which deployments changed since",
            RegionState(baseline=baseline(A, C)),
            pushed(a="old", b="new", c="new"),
            TABLE_REJECTED,
            RegionState(
                baseline=baseline(A, C), check=check(TABLE_REJECTED, b="new"), rejected="7.5"
            ),
        ),
        (
            "nothing changed since the accepted config: nobody to blame but everyone",
            RegionState(accepted=routes(a="old")),
            pushed(a="old"),
            TABLE_REJECTED,
            RegionState(accepted=routes(a="old"), rejected="7.5"),
        ),
        (
            "the same rejection again (its check still running): nothing changes",
            RegionState(check=check(TABLE_REJECTED, b="new"), rejected="7.5"),
            pushed(a="old", b="new"),
            TABLE_REJECTED,
            RegionState(check=check(TABLE_REJECTED, b="new"), rejected="7.5"),
        ),
        (
            "an ACK ends a check on its way",
            RegionState(check=check(TABLE_REJECTED, b="new"), rejected="7.5"),
            pushed(a="old"),
            ACKED,
            RegionState(accepted=routes(a="old"), baseline=baseline(A)),
        ),
        (
            "no answer yet: nothing changes",
            RegionState(accepted=routes(a="old"), check=check(TABLE_REJECTED, b="new")),
            pushed(a="old", b="new"),
            PENDING,
            RegionState(accepted=routes(a="old"), check=check(TABLE_REJECTED, b="new")),
        ),
    ],
)
def test_decide(
    case: str, state: RegionState, push: Pushed, verdict: Verdict, expected: RegionState
) -> None:
    got = decide(state, push, verdict, FINGERPRINTS)
    assert got == expected, case


CHECK = check(TABLE_REJECTED, b="new", c="new")


@pytest.mark.parametrize(
    ("case", "state", "refused", "expected"),
    [
        (
            "Envoy refuses one suspect alone: it is quarantined with the live Envoy's words",
            RegionState(accepted=routes(a="old"), check=CHECK, rejected="7.5"),
            {B: "Duration out-of-range (validate)"},
            RegionState(
                accepted=routes(a="old"),
                quarantined={B: quarantine("fb", RDS)},
                rejected="7.5",
                blame=frozenset({B}),
            ),
        ),
        (
            "Envoy takes every suspect alone: nobody is quarantined, the NACK concerns all",
            RegionState(accepted=routes(a="old"), check=CHECK, rejected="7.5"),
            {},
            RegionState(accepted=routes(a="old"), rejected="7.5"),
        ),
        (
            "a newer rejection replaced the check: its answer is dropped",
            RegionState(check=check(TABLE_REJECTED, c="new"), rejected="7.6"),
            {B: "Duration out-of-range"},
            RegionState(check=check(TABLE_REJECTED, c="new"), rejected="7.6"),
        ),
    ],
)
def test_checked(
    case: str, state: RegionState, refused: dict[DeploymentKey, str], expected: RegionState
) -> None:
    assert checked(state, CHECK, refused) == expected, case


@pytest.mark.parametrize(
    ("case", "fingerprints", "kept"),
    [
        ("the deployment did not change: still out", FINGERPRINTS, True),
        ("its configuration changed: tried again", {**FINGERPRINTS, B: "fb2"}, False),
        ("it was deleted: forgotten", {A: "fa"}, False),
    ],
)
def test_a_quarantine_lasts_until_the_deployment_changes(
    case: str, fingerprints: dict[DeploymentKey, str], kept: bool
) -> None:
    state = RegionState(accepted=routes(a="old"), quarantined={B: quarantine("fb")})
    got = decide(state, pushed(a="old"), PENDING, fingerprints)
    assert (B in got.quarantined) is kept, case


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
            "a quarantined deployment never ACKed here is left out, the rest goes as it is",
            RegionState(accepted=routes(a="old"), quarantined={B: quarantine("fb")}),
            routes(a="new", c="new"),
        ),
        (
            "a quarantined deployment Envoy accepted before is kept at that form",
            RegionState(accepted=routes(a="old", b="old"), quarantined={B: quarantine("fb")}),
            {A: NEW[A], B: OLD[B], C: NEW[C]},
        ),
        (
            "while a check runs, nothing is taken away or held back (not even without baseline)",
            RegionState(check=CHECK),
            routes(a="new", b="new", c="new"),
        ),
    ],
)
def test_compose(
    case: str, state: RegionState, expected: Mapping[DeploymentKey, DeploymentRoute]
) -> None:
    current = [NEW[A], NEW[B], NEW[C]]
    got = compose(state, current)
    assert {(r.environment, r.deployment): r for r in got} == dict(expected), case


def test_a_kept_form_follows_the_current_workers_of_its_version() -> None:
    """The accepted form's settings, the current route's hosts (EDS): a worker that replaced
    another is routed to, in the form Envoy accepted."""
    state = RegionState(accepted=routes(b="old"), quarantined={B: quarantine("fb", kept="v1")})
    moved = route(B, 1e11, port=9300)  # the rejected settings, and a new worker
    (got,) = compose(state, [moved])
    assert got.health_check == OLD[B].health_check
    assert got.backends[0].local_endpoints == moved.backends[0].local_endpoints
    assert got.backends[0].tiers == moved.backends[0].tiers


def test_a_kept_form_of_a_version_no_longer_current_keeps_its_hosts() -> None:
    """Its own workers stay as accepted; a worker of the new version (which may have reached
    Envoy with the rejected update's endpoints) is listed draining, so Envoy sends it nothing
    and the agent never counts it as serving (which would drain the old workers)."""
    state = RegionState(accepted=routes(b="old"), quarantined={B: quarantine("fb", kept="v1")})
    newcomer = Endpoint("w9", "127.0.0.1", 9900, 9901)
    both = [WORKER, newcomer]  # the current route lists every worker of the track
    other = DeploymentRoute.local("b", "production", both, version="v2")
    (got,) = compose(state, [other])
    draining = replace(newcomer, draining=True)
    (old,) = OLD[B].backends
    assert got.backends[0].local_endpoints == (*(old.local_endpoints or ()), draining)
    assert got.backends[0].tiers[0].endpoints == (*old.tiers[0].endpoints, draining)
    assert replace(got, backends=OLD[B].backends) == OLD[B]


def test_a_kept_form_of_a_version_no_longer_current_without_newcomers_is_as_accepted() -> None:
    state = RegionState(accepted=routes(b="old"), quarantined={B: quarantine("fb", kept="v1")})
    other = DeploymentRoute.local("b", "production", [WORKER], version="v2")
    (got,) = compose(state, [other])
    assert got == OLD[B]
