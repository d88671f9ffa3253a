"""Table tests of what each region's agent is told (controlplane.reconcile.agents)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from controlplane.autoscale import RegionScale
from controlplane.ir.index import ClusterIndex
from controlplane.ir.model import DeploymentRoute, Endpoint
from controlplane.moves import Move
from controlplane.policy import ResolvedDeployment
from controlplane.reconcile.agents import desired_state, releasable
from controlplane.reconcile.plan import NetworkPlan
from controlplane.reconcile.state import NetworkState
from meshline.keys import DeploymentKey, PlacedTrackKey, TrackKey
from meshline.v1 import agent_pb2
from tests.controlplane.ir.test_build import _resolved

S = agent_pb2.WorkerState
KEY = DeploymentKey("production", "d")
MAIN = TrackKey(*KEY, "")


def _dep(deactivated: bool = False) -> ResolvedDeployment:
    dep = _resolved("d", [{"location": {"regions": ["eu-west"]}}])
    return replace(dep, deactivated=deactivated)


def _plan(
    dep: ResolvedDeployment,
    scales: dict[PlacedTrackKey, RegionScale] | None = None,
    moves: dict[DeploymentKey, Move] | None = None,
) -> NetworkPlan:
    workload = agent_pb2.Workload(
        deployment="d", environment="production", revision="r1", replicas=1, track=""
    )
    state = NetworkState(
        scales=scales or {},
        moves=moves or {},
        clusters=ClusterIndex([DeploymentRoute.local("d", "production", ())]),
    )
    return NetworkPlan((dep,), {MAIN: workload}, {}, state)


def _worker(
    wid: str, state: int = S.WORKER_STATE_HEALTHY, dep: str = "d"
) -> agent_pb2.WorkerReport:
    return agent_pb2.WorkerReport(
        worker_id=wid, deployment=dep, environment="production", state=S.ValueType(state)
    )


@dataclass(frozen=True)
class DesiredCase:
    name: str
    region: str
    plan: NetworkPlan
    # (track, replicas) of each workload the agent is told to run
    expected: tuple[tuple[str, int], ...]
    last: agent_pb2.DesiredState | None = None
    report: agent_pb2.AgentReport = field(default_factory=agent_pb2.AgentReport)


MOVE = {KEY: Move(origin=("us-east",), to=("eu-west",), keep=("us-east",), waiting="eu-west")}
TOLD = agent_pb2.DesiredState(
    workloads=[agent_pb2.Workload(deployment="d", environment="production", replicas=4)]
)

DESIRED_CASES = [
    DesiredCase("placed: the spec's replicas", "eu-west", _plan(_dep()), (("", 1),)),
    DesiredCase(
        "placed: the autoscaler's replicas win",
        "eu-west",
        _plan(_dep(), scales={PlacedTrackKey(*MAIN, "eu-west"): RegionScale(desired=3)}),
        (("", 3),),
    ),
    DesiredCase("not placed: nothing", "us-east", _plan(_dep()), ()),
    DesiredCase("deactivated: nothing anywhere", "eu-west", _plan(_dep(deactivated=True)), ()),
    DesiredCase(
        "a move keeps the old region at what it was told",
        "us-east",
        _plan(_dep(), moves=MOVE),
        (("", 4),),
        last=TOLD,
    ),
    DesiredCase(
        "a move after a restart keeps the old region at the workers it runs",
        "us-east",
        _plan(_dep(), moves=MOVE),
        (("", 2),),
        report=agent_pb2.AgentReport(
            workers=[_worker("a"), _worker("b"), _worker("c", S.WORKER_STATE_DRAINING)]
        ),
    ),
    DesiredCase(
        "a move keeps nothing where nothing runs and nothing was told",
        "us-east",
        _plan(_dep(), moves=MOVE),
        (),
    ),
]


@pytest.mark.parametrize("case", DESIRED_CASES, ids=lambda c: c.name)
def test_desired_state(case: DesiredCase) -> None:
    desired = desired_state(
        case.region, case.plan, case.last, case.report, ["eu-west", "us-east", "eu-central"]
    )
    assert tuple((w.track, w.replicas) for w in desired.workloads) == case.expected
    # Every workload names its own clusters, as the IR named them; the hosts outside the
    # region are the activator and every other region's gateway.
    for workload in desired.workloads:
        assert tuple(workload.local_clusters) == case.plan.state.clusters.local(MAIN)
        assert workload.local_clusters[0].endswith("~local.grpc")
    others = sorted({"eu-west", "us-east", "eu-central"} - {case.region})
    assert list(desired.remote_hostnames) == ["activator", *(f"gateway.{r}" for r in others)]
    assert list(desired.holding_hostnames) == ["activator"]  # answers probes, serves nothing


def test_a_kept_workload_is_a_copy_of_what_was_sent() -> None:
    """The reconciler compares the new desired state with the last one it sent: filling in
    names must not change that message."""
    last = agent_pb2.DesiredState()
    last.CopyFrom(TOLD)
    desired_state("us-east", _plan(_dep(), moves=MOVE), last, None, ["eu-west"])
    assert last == TOLD


def _route(*endpoints: Endpoint) -> DeploymentRoute:
    return DeploymentRoute.local("d", "production", endpoints)


HEALTHY = Endpoint("w1", "127.0.0.1", 9001, 9002)
DRAINING = replace(HEALTHY, draining=True)


@pytest.mark.parametrize(
    ("name", "workers", "routes", "released"),
    [
        (
            "nothing confirmed yet: nothing released",
            [_worker("w1", S.WORKER_STATE_DRAINING)],
            None,
            [],
        ),
        (
            "confirmed draining: released",
            [_worker("w1", S.WORKER_STATE_DRAINING)],
            {KEY: _route(DRAINING)},
            ["w1"],
        ),
        (
            "still routable in the confirmed config: kept",
            [_worker("w1", S.WORKER_STATE_DRAINING)],
            {KEY: _route(HEALTHY)},
            [],
        ),
        (
            "an unhealthy host may still be picked: kept",
            [_worker("w1", S.WORKER_STATE_DRAINING)],
            {KEY: _route(replace(HEALTHY, healthy=False))},
            [],
        ),
        (
            "the deployment left the confirmed config: released",
            [_worker("w1", S.WORKER_STATE_DRAINING)],
            {},
            ["w1"],
        ),
        (
            "listed by no cluster: released",
            [_worker("w1", S.WORKER_STATE_DRAINING)],
            {KEY: _route()},
            ["w1"],
        ),
        (
            "a worker that is not draining is never released",
            [_worker("w1")],
            {KEY: _route(DRAINING)},
            [],
        ),
        (
            "another deployment's route does not keep it",
            [_worker("w1", S.WORKER_STATE_DRAINING, dep="e")],
            {KEY: _route(HEALTHY)},
            ["w1"],
        ),
    ],
)
def test_releasable(
    name: str,
    workers: list[agent_pb2.WorkerReport],
    routes: dict[DeploymentKey, DeploymentRoute] | None,
    released: list[str],
) -> None:
    assert releasable(agent_pb2.AgentReport(workers=workers), routes) == released
