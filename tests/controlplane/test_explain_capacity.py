"""capacity_plans: what a plan says about each region's room, as a table of situations (fits,
waits with the numbers, stops an idle deployment, cap reached, memory unknown, nothing until
invoked), and the deployments of one request taking room from each other in order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from controlplane.autoscale.admission import Demand
from controlplane.explain_capacity import (
    ESTIMATED,
    MAKES_ROOM,
    MEASURED,
    STARTS,
    UNTIL_INVOKED,
    WAITS,
    PlannedDeployment,
    RegionRoom,
    TrackFootprint,
    capacity_plans,
    starting_workers,
)
from controlplane.policy import ResolvedDeployment, resolve_deployment
from controlplane.policy.scaling import ScalingSettings
from controlplane.reconcile.capacity import RegionMemory
from meshline.keys import DeploymentKey, PlacedTrackKey
from meshline.v1.resources_pb2 import Deployment, Environment, RegionCapacityPlan
from tests.controlplane.store.builders import location
from tests.controlplane.store.builders import region as region_resource

MIB = 2**20
GIB = 2**30
REGIONS = [region_resource(n, "DE", "EU").region for n in ("eu", "us")]


def resolved(
    name: str,
    replicas: int = 1,
    scaling: dict[str, Any] | None = None,
    regions: Sequence[str] = ("eu",),
    deactivated: bool = False,
) -> ResolvedDeployment:
    dep = Deployment()
    dep.metadata.name = name
    dep.spec.environment = "production"
    dep.spec.model = "m"
    dep.spec.version = "v1"
    dep.spec.deactivated = deactivated
    if scaling is None:
        dep.spec.replicas = replicas
    else:
        for field, value in scaling.items():
            setattr(dep.spec.scaling, field, value)
    dep.spec.policies.append(location(regions=list(regions)))
    env = Environment()
    env.metadata.name = "production"
    return resolve_deployment(dep, env, REGIONS)


def planned(
    dep: ResolvedDeployment, footprint: int = 1 * GIB, source: str = ESTIMATED
) -> PlannedDeployment:
    return PlannedDeployment(dep, (TrackFootprint("", "v1", footprint, source),))


def memory(free: int, budget: int = 12 * GIB, draining: int = 0) -> RegionMemory:
    return RegionMemory(
        total_bytes=24 * GIB,
        available_bytes=20 * GIB,
        budget_bytes=budget,
        used_bytes=budget - free,
        draining_bytes=draining,
        free_bytes=free,
        cpus=2,
        workers=0,
    )


def idle(name: str, memory_bytes: int, region: str = "eu") -> Demand:
    """A scale-to-zero deployment's worker with nothing in flight: it may be stopped."""
    key = PlacedTrackKey("production", name, "", region)
    return Demand(key, 1, 0, 1, 0, memory_bytes, evictable=True)


def busy(name: str, memory_bytes: int, region: str = "eu") -> Demand:
    key = PlacedTrackKey("production", name, "", region)
    return Demand(key, 1, 1, 1, 0, memory_bytes)


def plan_of(
    items: Sequence[PlannedDeployment], rooms: dict[str, RegionRoom], name: str = ""
) -> RegionCapacityPlan:
    plans = capacity_plans(items, rooms)
    key = DeploymentKey("production", name or items[-1].resolved.name)
    (only,) = plans[key]
    return only


@pytest.mark.parametrize(
    ("settings", "workers"),
    [
        (ScalingSettings.fixed(2), 2),
        (ScalingSettings.fixed(0), 0),
        (ScalingSettings(min_replicas=0, max_replicas=3, autoscaled=True), 0),
        (ScalingSettings(min_replicas=0, max_replicas=3, autoscaled=True, initial_replicas=2), 2),
        (ScalingSettings(min_replicas=1, max_replicas=3, autoscaled=True), 1),
        (ScalingSettings(min_replicas=1, max_replicas=3, autoscaled=True, initial_replicas=3), 3),
    ],
)
def test_starting_workers(settings: ScalingSettings, workers: int) -> None:
    assert starting_workers(settings) == workers


@pytest.mark.parametrize(
    ("room", "outcome", "workers", "reason", "stops"),
    [
        pytest.param(RegionRoom(memory(4 * GIB)), STARTS, 1, "", [], id="fits"),
        pytest.param(
            RegionRoom(memory(400 * MIB)),
            WAITS,
            1,
            "region 'eu' has 400 MiB free of its 12.0 GiB memory budget, version 'v1' needs "
            "1.0 GiB: 0 of 1 wanted workers run",
            [],
            id="waits-with-the-numbers",
        ),
        pytest.param(
            RegionRoom(memory(400 * MIB), running=(idle("old", 2 * GIB), busy("hot", GIB))),
            MAKES_ROOM,
            1,
            "version 'v1' needs 1.0 GiB: 0 of 1 wanted workers run",
            ["production/old"],
            id="stops-an-idle-deployment",
        ),
        pytest.param(
            RegionRoom(memory(400 * MIB), running=(busy("hot", 4 * GIB),)),
            WAITS,
            1,
            "0 of 1 wanted workers run",
            [],
            id="a-busy-one-is-never-stopped",
        ),
        pytest.param(
            RegionRoom(memory(400 * MIB), running=(idle("small", 100 * MIB),)),
            WAITS,
            1,
            "needs 1.0 GiB",
            [],
            id="stopping-every-idle-one-would-not-make-room",
        ),
        pytest.param(RegionRoom(None), STARTS, 1, "", [], id="memory-unknown-holds-nothing"),
    ],
)
def test_a_deployment_that_starts_workers(
    room: RegionRoom, outcome: str, workers: int, reason: str, stops: list[str]
) -> None:
    plan = plan_of([planned(resolved("new"))], {"eu": room})
    assert plan.region == "eu"
    assert plan.outcome == outcome
    assert plan.workers == workers
    assert reason in plan.reason and bool(reason) == bool(plan.reason)
    assert list(plan.stops) == stops
    assert plan.footprint_bytes == GIB and plan.footprint_source == ESTIMATED
    assert plan.memory_known == (room.memory is not None)
    if room.memory is not None:
        assert plan.memory_free_bytes == room.memory.free_bytes
        assert plan.memory_budget_bytes == room.memory.budget_bytes


@pytest.mark.parametrize(
    ("room", "reason"),
    [
        pytest.param(
            RegionRoom(memory(4 * GIB)), "its first request starts a worker, which fits now"
        ),
        pytest.param(
            RegionRoom(memory(400 * MIB)),
            "its first request would wait for room (region 'eu' has 400 MiB free",
        ),
        pytest.param(
            RegionRoom(memory(400 * MIB), running=(idle("old", 2 * GIB),)),
            "its first request would stop idle workers of production/old to make room",
        ),
    ],
)
def test_min_replicas_zero_starts_nothing_until_invoked(room: RegionRoom, reason: str) -> None:
    dep = resolved("lazy", scaling={"min_replicas": 0, "max_replicas": 2})
    plan = plan_of([planned(dep, GIB, MEASURED)], {"eu": room})
    assert plan.outcome == UNTIL_INVOKED and plan.workers == 0
    assert plan.reason.startswith(reason), plan.reason
    assert not plan.stops  # nothing is stopped for a request that has not come
    assert plan.footprint_source == MEASURED


def test_warm_at_creation_counts_like_a_floor() -> None:
    dep = resolved("warm", scaling={"min_replicas": 0, "max_replicas": 4, "initial_replicas": 2})
    plan = plan_of([planned(dep)], {"eu": RegionRoom(memory(int(1.5 * GIB)))})
    assert plan.outcome == WAITS and plan.workers == 2
    assert "1 of 2 wanted workers run" in plan.reason


def test_max_replicas_still_caps_what_is_above_the_floor() -> None:
    """Floors were reserved at placement (a region without them is excluded there); workers
    above the floor start only within the region's max_replicas."""
    dep = resolved("warm", scaling={"min_replicas": 1, "max_replicas": 4, "initial_replicas": 2})
    room = RegionRoom(memory(8 * GIB), max_replicas=2, running=(busy("hot", GIB),))
    plan = plan_of([planned(dep)], {"eu": room})
    assert plan.outcome == WAITS and plan.workers == 2
    assert plan.reason == "region 'eu' is at capacity (max_replicas 2): 1 of 2 wanted workers run"


def test_the_deployments_of_one_request_take_room_in_order() -> None:
    """4 GiB free: the first two 2-GiB deployments fit; the third stops the idle one to make
    room; the fourth waits (the room being freed is the third's)."""
    room = RegionRoom(memory(4 * GIB), running=(idle("old", 2 * GIB),))
    items = [planned(resolved(f"d{i}"), 2 * GIB) for i in range(4)]
    plans = capacity_plans(items, {"eu": room})
    outcomes = [plans[DeploymentKey("production", f"d{i}")][0] for i in range(4)]
    assert [p.outcome for p in outcomes] == [STARTS, STARTS, MAKES_ROOM, WAITS]
    assert list(outcomes[2].stops) == ["production/old"] and not outcomes[3].stops
    # Each finds the region as the ones before it leave it.
    assert [p.memory_free_bytes for p in outcomes] == [4 * GIB, 2 * GIB, 0, 0]
    assert outcomes[3].reason == (
        "region 'eu' has 0 MiB free of its 12.0 GiB memory budget, version 'v1' needs 2.0 GiB: "
        "0 of 1 wanted workers run"
    )


def test_a_deployment_planned_again_counts_its_own_workers_once() -> None:
    """Re-applying a deployment that runs its worker asks for no new room."""
    room = RegionRoom(memory(0), running=(busy("same", GIB),))
    plan = plan_of([planned(resolved("same"))], {"eu": room})
    assert plan.outcome == STARTS and not plan.reason


def test_every_placed_region_and_nothing_for_a_deactivated_deployment() -> None:
    both = resolved("both", regions=("eu", "us"))
    rooms = {"eu": RegionRoom(memory(4 * GIB)), "us": RegionRoom(memory(0))}
    plans = capacity_plans([planned(both)], rooms)
    assert [(p.region, p.outcome) for p in plans[both.key]] == [("eu", STARTS), ("us", WAITS)]
    off = resolved("off", deactivated=True)
    assert capacity_plans([planned(off)], rooms) == {}
