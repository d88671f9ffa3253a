"""Placement changes are make-before-break: which old regions keep serving, given the new
placement, what the agents and gateways report, and the time."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import pytest

from controlplane.autoscale import RegionScale
from controlplane.autoscale.failures import CrashLoop, FailedWake
from controlplane.ir.index import ClusterIndex
from controlplane.ir.names import gateway_hostname
from controlplane.moves import (
    MOVE_DEADLINE_S,
    Move,
    MoveFacts,
    MoveState,
    MoveTracker,
    decide_move,
    move_facts,
)
from controlplane.policy import ResolvedDeployment
from controlplane.policy.network import resolve_network
from meshline.keys import PlacedTrackKey, TrackKey
from meshline.v1 import agent_pb2
from meshline.v1.resources_pb2 import Environment
from tests.controlplane.ir.test_build import _resolved
from tests.controlplane.store.builders import deployment, policy, region

EU = ("eu",)
# The names the IR gave deployment d's clusters (its own version and a v2 leg).
CLUSTERS = ClusterIndex.of_tracks(
    [TrackKey("production", "d", ""), TrackKey("production", "d", "v2")]
)
S = agent_pb2.WorkerState


def _facts(
    running: tuple[str, ...] = ("us",),
    serving: tuple[str, ...] = (),
    connected: tuple[str, ...] = ("eu", "us"),
    reaches: dict[str, tuple[str, ...]] | None = None,
    placement: tuple[str, ...] = EU,
    idle: tuple[str, ...] = (),
) -> MoveFacts:
    """Moving to `placement` (eu); by default us runs it, eu does not serve yet."""
    return MoveFacts(
        placement,
        frozenset(running),
        frozenset(serving),
        frozenset(connected),
        {g: frozenset(r) for g, r in (reaches or {}).items()},
        frozenset(idle),
    )


SERVED = {"serving": ("eu",), "reaches": {"us": ("eu",)}}


@dataclass(frozen=True)
class Case:
    facts: MoveFacts
    previous: MoveState | None
    now: float
    state: MoveState | None
    move: Move | None


def _state(
    started: float = 0.0,
    released: tuple[str, ...] = (),
    expired: bool = False,
    to: tuple[str, ...] = EU,
    origin: tuple[str, ...] = ("us",),
) -> MoveState:
    return MoveState(to, started, origin, frozenset(released), expired)


def _move(waiting: str, keep: tuple[str, ...] = ("us",), expired: bool = False) -> Move:
    return Move(("us",), EU, keep, waiting, expired)


WAIT_EU = "waiting for a healthy worker in eu"
CASES = {
    "nothing runs outside the placement: no move": Case(_facts(running=()), None, 5, None, None),
    "the new region does not serve yet: the old one keeps serving": Case(
        _facts(), None, 5, _state(5), _move(WAIT_EU)
    ),
    "the new region serves and every gateway reaches it: the old one goes": Case(
        _facts(**SERVED),  # type: ignore[arg-type]
        _state(),
        10,
        _state(released=("us",)),
        None,
    ),
    "the old region's gateway does not reach the new one yet": Case(
        _facts(serving=("eu",)),
        _state(),
        10,
        _state(),
        _move("waiting for the gateway of us to reach eu"),
    ),
    "a region that only forwards must reach the new placement too": Case(
        _facts(serving=("eu",), connected=("eu", "us", "ap"), reaches={"us": ("eu",)}),
        _state(),
        10,
        _state(),
        _move("waiting for the gateway of ap to reach eu"),
    ),
    "reaching only the old region does not count": Case(
        _facts(
            serving=("eu",), connected=("eu", "us", "ap"), reaches={"us": ("eu",), "ap": ("us",)}
        ),
        _state(),
        10,
        _state(),
        _move("waiting for the gateway of ap to reach eu"),
    ),
    "a region without agent is not waited for (it gets no config)": Case(
        _facts(**SERVED, placement=("eu", "ap")),  # type: ignore[arg-type]
        _state(to=("eu", "ap")),
        10,
        _state(to=("eu", "ap"), released=("us",)),
        None,
    ),
    "no region of the new placement has an agent yet": Case(
        _facts(connected=("us",)),
        _state(),
        10,
        _state(),
        _move("waiting for the agent of eu to connect"),
    ),
    "at the deadline the old region goes anyway, and status says so": Case(
        _facts(),
        _state(),
        MOVE_DEADLINE_S,
        _state(released=("us",), expired=True),
        _move(WAIT_EU, keep=(), expired=True),
    ),
    "just before the deadline it still serves": Case(
        _facts(), _state(), MOVE_DEADLINE_S - 0.1, _state(), _move(WAIT_EU)
    ),
    "expired, its workers gone: status still says why until the new region serves": Case(
        _facts(running=()),
        _state(released=("us",), expired=True),
        400,
        _state(expired=True),
        _move(WAIT_EU, keep=(), expired=True),
    ),
    "expired, then the new region serves: over": Case(
        _facts(running=(), **SERVED),  # type: ignore[arg-type]
        _state(expired=True),
        400,
        None,
        None,
    ),
    "let go while its workers drain: never kept again, even if the new region fails": Case(
        _facts(), _state(released=("us",)), 20, _state(released=("us",)), None
    ),
    "let go and its workers are gone: over": Case(
        _facts(running=()), _state(released=("us",)), 20, None, None
    ),
    "another placement mid-move is a new move with its own deadline": Case(
        _facts(placement=("ap",), connected=("eu", "us", "ap")),
        _state(started=0),
        250,
        _state(started=250, to=("ap",)),
        Move(("us",), ("ap",), ("us",), "waiting for a healthy worker in ap"),
    ),
    "the new region is at zero on purpose: nothing to wait for, a request wakes it": Case(
        _facts(idle=("eu",)), _state(), 10, _state(released=("us",)), None
    ),
    "one new region at zero on purpose, another serving: gateways must reach that one": Case(
        _facts(
            serving=("eu",),
            idle=("ap",),
            placement=("eu", "ap"),
            connected=("eu", "us", "ap"),
            reaches={"us": ("ap",)},
        ),
        _state(to=("eu", "ap")),
        10,
        _state(to=("eu", "ap")),
        Move(("us",), ("eu", "ap"), ("us",), "waiting for the gateway of us to reach eu"),
    ),
    "two old regions keep serving together": Case(
        _facts(running=("us", "ap")),
        None,
        1,
        _state(1, origin=("ap", "us")),
        Move(("ap", "us"), EU, ("ap", "us"), WAIT_EU),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_decide_move(case: Case) -> None:
    assert decide_move(case.facts, case.previous, case.now) == (case.state, case.move)


def test_status_words_name_the_regions_the_wait_and_the_bound() -> None:
    assert _move(WAIT_EU).describe() == (
        "moving from us to eu: waiting for a healthy worker in eu; us keeps serving it until "
        "then (at most 300 s)"
    )
    assert _move(WAIT_EU, keep=(), expired=True).describe() == (
        "moving from us to eu did not finish within 300 s: us stopped serving it anyway; "
        "waiting for a healthy worker in eu"
    )


def _report(
    *workers: agent_pb2.WorkerReport, clusters: dict[str, list[str]] | None = None
) -> agent_pb2.AgentReport:
    report = agent_pb2.AgentReport(workers=workers)
    for name, regions in (clusters or {}).items():
        # What the agent reports: the EDS hostnames Envoy shows (here other regions' gateways).
        hostnames = [gateway_hostname(r) for r in regions]
        report.clusters.add(cluster=name, routable_hosts=len(regions), routable_hostnames=hostnames)
    return report


def _worker(
    state: int, routable: bool = True, track: str = "", dep: str = "d"
) -> agent_pb2.WorkerReport:
    return agent_pb2.WorkerReport(
        worker_id=f"w-{dep}-{track}-{state}",
        deployment=dep,
        environment="production",
        state=S.ValueType(state),
        gateway_routable=routable,
        track=track,
    )


def test_facts_come_from_the_agents_reports() -> None:
    both = {"d.production.grpc": ["eu", "us"], "d.production.http": ["eu"]}
    reports = {
        # Placed; serving the main track in its own gateway's view, the split leg not yet.
        "eu": _report(
            _worker(S.WORKER_STATE_HEALTHY),
            _worker(S.WORKER_STATE_HEALTHY, routable=False, track="v2"),
        ),
        # Left: still runs a worker (starting counts: it is not draining).
        "us": _report(_worker(S.WORKER_STATE_STARTING), clusters=both),
        # Left: only a draining worker, and another deployment's.
        "ap": _report(_worker(S.WORKER_STATE_DRAINING), _worker(S.WORKER_STATE_HEALTHY, dep="x")),
    }
    facts = move_facts("production", "d", ("",), EU, reports, CLUSTERS)
    assert facts == MoveFacts(
        EU,
        running=frozenset({"us"}),
        serving=frozenset({"eu"}),
        connected=frozenset({"eu", "us", "ap"}),
        # Routable in every cluster of the deployment: eu only (us is not in the http one).
        reaches={"eu": frozenset(), "us": frozenset({"eu"}), "ap": frozenset()},
    )
    # Every track needs a serving worker.
    assert move_facts("production", "d", ("", "v2"), EU, reports, CLUSTERS).serving == frozenset()
    # Only the hostnames the control plane gave connected regions' gateways name a region: a
    # worker, the activator or the gateway of a region without agent reaches none.
    others = agent_pb2.AgentReport()
    for cluster in both:
        others.clusters.add(
            cluster=cluster, routable_hostnames=["eu-d-1a2b", "activator", gateway_hostname("zz")]
        )
    assert move_facts("production", "d", ("",), EU, {**reports, "us": others}, CLUSTERS).reaches[
        "us"
    ] == (frozenset())
    # A placed region the autoscaler keeps at zero on purpose (cold, no worker wanted) is idle.
    scales = {
        PlacedTrackKey("production", "d", "", "eu"): RegionScale(desired=0, cold=True),
        PlacedTrackKey("production", "d", "", "ap"): RegionScale(
            desired=1, cold=True
        ),  # waking: not idle
    }
    idle = move_facts("production", "d", ("",), ("eu", "ap"), reports, CLUSTERS, scales).idle
    assert idle == frozenset({"eu"})
    # Back at zero because its wake crash-looped is not idle on purpose: it cannot serve, so the
    # old placement must not be let go for it.
    crashed = FailedWake(CrashLoop("rev-1", "eu-d-1", "exited with code 1"), "spec", 0.0)
    scales[PlacedTrackKey("production", "d", "", "eu")] = RegionScale(
        desired=0, cold=True, failed=crashed
    )
    assert (
        move_facts("production", "d", ("",), ("eu",), reports, CLUSTERS, scales).idle == frozenset()
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_tracker_keeps_state_between_rebuilds_and_wakes_at_the_deadline() -> None:
    clock = Clock()
    tracker = MoveTracker(clock)
    dep = _resolved("d", [{"location": {"regions": ["eu-west"]}}])
    old = {"us-east": _report(_worker(S.WORKER_STATE_HEALTHY)), "eu-west": _report()}
    moves = tracker.update([dep], old, CLUSTERS)
    assert moves[dep.key].keep == ("us-east",)
    assert tracker.next_check_s() == MOVE_DEADLINE_S
    clock.now += 100
    assert tracker.update([dep], old, CLUSTERS)[dep.key].keep == ("us-east",)
    assert tracker.next_check_s() == MOVE_DEADLINE_S - 100
    clock.now += MOVE_DEADLINE_S
    expired = tracker.update([dep], old, CLUSTERS)[dep.key]
    assert expired.expired and expired.keep == ()
    assert tracker.next_check_s() is None  # nothing kept: nothing to wake up for
    # A deactivated deployment runs nothing anywhere: nothing is kept for it.
    assert MoveTracker(clock).update([replace(dep, deactivated=True)], old, CLUSTERS) == {}


def _capacity_network(eu: int, us: int) -> dict[str, ResolvedDeployment]:
    """The network when eu and us hold `eu` and `us` replicas: an older deployment, then d
    (both may run in either region; capacity goes in creation order)."""
    both = [policy({"location": {"regions": ["eu", "us"]}})]
    older, d = (deployment(n, "m", "v1", policies=both).deployment for n in ("older", "d"))
    older.metadata.created_at, d.metadata.created_at = "2026-01-01", "2026-01-02"
    environment = Environment()
    environment.metadata.name = "production"
    regions = [region("eu", max_replicas=eu).region, region("us", max_replicas=us).region]
    network = resolve_network([older, d], {"production": environment}, regions)
    assert network.errors == {}
    return {key[1]: dep for key, dep in network.deployments.items()}


def test_a_region_capacity_change_moves_a_deployment_make_before_break(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Capacity alone moves d from us to eu (eu full and us with room, then the other way
    round). us keeps serving d until eu does and us's gateway reaches eu; the log tells it."""
    before, after = _capacity_network(eu=1, us=2), _capacity_network(eu=2, us=1)
    assert [before[n].placement.regions for n in ("older", "d")] == [("eu", "us"), ("us",)]
    assert [after[n].placement.regions for n in ("older", "d")] == [("eu", "us"), EU]
    dep = after["d"]
    clock = Clock()
    tracker = MoveTracker(clock)
    caplog.set_level(logging.INFO, logger="controlplane.moves")
    # Right after the change: us still runs d, eu has no worker of it yet.
    starting = {"us": _report(_worker(S.WORKER_STATE_HEALTHY)), "eu": _report()}
    assert tracker.update([dep], starting, CLUSTERS) == {dep.key: _move(WAIT_EU)}
    clock.now += 5
    served = {
        "us": _report(
            _worker(S.WORKER_STATE_HEALTHY),
            clusters={"d.production.grpc": ["eu"], "d.production.http": ["eu"]},
        ),
        "eu": _report(_worker(S.WORKER_STATE_HEALTHY)),
    }
    assert tracker.update([dep], served, CLUSTERS) == {}  # let go: its workers drain
    assert [r.getMessage() for r in caplog.records] == [
        f"production/d: {_move(WAIT_EU).describe()}",
        "production/d: moved from us to eu; eu serves it",
    ]
