"""Table tests of cold starts as the reconciler sees them (controlplane.reconcile.wakes)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controlplane.activator import HoldTarget
from controlplane.autoscale import CrashLoop, FailedWake, LoadSignal, RegionScale
from controlplane.ir.index import ClusterIndex
from controlplane.ir.model import (
    TIER_ACTIVATOR,
    Backend,
    DeploymentRoute,
    Endpoint,
    GatewayIR,
    NetworkIR,
    Tier,
)
from controlplane.reconcile.plan import NetworkPlan
from controlplane.reconcile.state import HoldSite, NetworkState
from controlplane.reconcile.wakes import hold_target, hold_targets, ready, wake_problem
from meshline.keys import DeploymentKey, PlacedTrackKey
from meshline.v1 import agent_pb2
from tests.controlplane.ir.test_build import _resolved

EU_MAIN = PlacedTrackKey("production", "d", "", "eu")
ROUTE = DeploymentRoute.local("d", "production", ())
CLUSTERS = ClusterIndex([ROUTE])
SERVING = {EU_MAIN: LoadSignal(serving=True)}


def _reaches(*hosts: int) -> agent_pb2.AgentReport:
    """A forwarding region's report: routable hosts of d's two clients' clusters."""
    report = agent_pb2.AgentReport()
    for name, count in zip(ROUTE.main.clusters.pair, hosts, strict=True):
        report.clusters.add(cluster=name, routable_hosts=count)
    return report


@pytest.mark.parametrize(
    ("name", "gateway", "signals", "reports", "clusters", "expected"),
    [
        ("the woken region serves: its own gateway replays", "eu", SERVING, {}, CLUSTERS, True),
        ("nothing serves yet", "eu", {}, {}, CLUSTERS, False),
        ("another gateway that reaches it", "us", SERVING, {"us": _reaches(1, 1)}, CLUSTERS, True),
        (
            "another gateway that reaches it over gRPC only",
            "us",
            SERVING,
            {"us": _reaches(1, 0)},
            CLUSTERS,
            False,
        ),
        ("another gateway without a report", "us", SERVING, {}, CLUSTERS, False),
        (
            "clusters the last IR did not name",
            "us",
            SERVING,
            {"us": _reaches(1, 1)},
            ClusterIndex(),
            False,
        ),
    ],
)
def test_ready(
    name: str,
    gateway: str,
    signals: dict[PlacedTrackKey, LoadSignal],
    reports: dict[str, agent_pb2.AgentReport],
    clusters: ClusterIndex,
    expected: bool,
) -> None:
    assert ready(gateway, EU_MAIN, signals, reports, clusters) is expected


def test_hold_targets_name_the_track_and_region_each_gateway_waits_for() -> None:
    dep = replace(
        _resolved("d", [{"location": {"regions": ["eu-west"]}}]),
    )
    activator = Endpoint("activator", "127.0.0.1", 7001, 7002)
    cold = Backend(
        "",
        "v1",
        tiers=(Tier("eu-west", TIER_ACTIVATOR, 1, (activator,)),),
        wakes="eu-west",
    )
    warm = Backend("v2", "v2", weight=0)
    route = DeploymentRoute("d", "production", (cold, warm))
    network = NetworkIR(
        (
            GatewayIR("eu-west", "127.0.0.1", 8080, (route,)),
            GatewayIR("us-east", "127.0.0.1", 8081, (route,)),
        )
    )
    plan = NetworkPlan((dep,), {}, {}, NetworkState())
    targets = hold_targets(network, plan)
    wanted = HoldTarget(
        PlacedTrackKey("production", "d", "", "eu-west"), dep.scaling.cold_start_timeout_s
    )
    assert targets == {
        ("eu-west", "production", "d", "v1"): wanted,
        ("us-east", "production", "d", "v1"): wanted,
    }


def test_wake_problem_says_when_a_user_must_act() -> None:
    crashed = FailedWake(CrashLoop("r1", "w1", "exited with code 1"), "spec", 0.0)
    failed = wake_problem(RegionScale(0, cold=True, failed=crashed), LoadSignal(problem="x"))
    assert failed.user_must_act and "exited with code 1" in failed.reason
    full = wake_problem(RegionScale(0, cold=True, problem="no capacity"), LoadSignal())
    assert not full.user_must_act and full.reason == "no capacity" and full.waits_for_room
    starting = wake_problem(RegionScale(1, cold=True), LoadSignal(problem="loading"))
    assert starting.reason == "loading" and not starting.waits_for_room


EU_WAKE = HoldTarget(PlacedTrackKey("production", "d", "", "eu"), 30.0)
CANARY_WAKE = HoldTarget(PlacedTrackKey("production", "d", "v2", "eu"), 30.0)
HOLDS = {
    HoldSite("us", "production", "d", "v1"): EU_WAKE,
    HoldSite("us", "production", "d", "v2"): CANARY_WAKE,
}
RESOLVED = {DeploymentKey("production", "d")}


@pytest.mark.parametrize(
    ("name", "site", "expected"),
    [
        ("the version's own wake", HoldSite("us", "production", "d", "v2"), CANARY_WAKE),
        # Routed by the config before a re-apply changed the version: not a replay loop.
        (
            "an older config's version waits for the deployment's wake there",
            HoldSite("us", "production", "d", "v0"),
            EU_WAKE,
        ),
        ("no longer cold at that gateway: replay", HoldSite("eu", "production", "d", "v1"), None),
        (
            "unknown deployment: an error naming it",
            HoldSite("us", "production", "x", "v1"),
            "the activator got a request for deployment 'x' (environment 'production', version "
            "'v1') from gateway 'us', which does not route it to any region",
        ),
    ],
)
def test_hold_target(name: str, site: HoldSite, expected: HoldTarget | str | None) -> None:
    assert hold_target(HOLDS, RESOLVED, site) == expected
