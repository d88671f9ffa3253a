"""region_rooms: each region's room for a plan, from the last rebuild's state and the agents'
reports: memory as admission saw it, the tracks running there with what their workers use,
and which of them are idle (may scale to zero, nothing in flight, no request held)."""

from __future__ import annotations

from controlplane.autoscale import RegionScale
from controlplane.autoscale.admission import Demand
from controlplane.explain_capacity import RegionRoom
from controlplane.policy import ResolvedDeployment, resolve_deployment
from controlplane.reconcile import NetworkState
from controlplane.reconcile.capacity import RegionMemory
from controlplane.status import region_rooms
from meshline.keys import PlacedTrackKey
from meshline.v1 import agent_pb2
from meshline.v1.resources_pb2 import Deployment, Environment
from tests.controlplane.store.builders import region as region_resource

GIB = 2**30
REGIONS = [region_resource(n, "DE", "EU").region for n in ("eu", "us")]
MEMORY = RegionMemory(24 * GIB, 20 * GIB, 12 * GIB, 3 * GIB, 0, 9 * GIB, 2, 3)


def _resolved(name: str, min_replicas: int | None) -> ResolvedDeployment:
    dep = Deployment()
    dep.metadata.name = name
    dep.spec.environment = "production"
    dep.spec.version = "v1"
    if min_replicas is None:
        dep.spec.replicas = 1
    else:
        dep.spec.scaling.min_replicas = min_replicas
        dep.spec.scaling.max_replicas = 2
    env = Environment()
    env.metadata.name = "production"
    return resolve_deployment(dep, env, REGIONS)


def _worker(
    name: str, memory: int, inflight: int = 0, draining: bool = False
) -> agent_pb2.WorkerReport:
    state = agent_pb2.WORKER_STATE_DRAINING if draining else agent_pb2.WORKER_STATE_HEALTHY
    return agent_pb2.WorkerReport(
        worker_id=f"{name}-{memory}",
        deployment=name,
        environment="production",
        state=state,
        inflight=inflight,
        memory_bytes=memory,
    )


def test_rooms_name_what_runs_and_what_is_idle() -> None:
    state = NetworkState()
    for name, floor in (("idle", 0), ("serving", 0), ("fixed", None), ("held", 0), ("cold", 0)):
        resolved = _resolved(name, floor)
        state.resolved[resolved.key] = resolved
        for region in ("eu", "us"):
            state.scales[PlacedTrackKey("production", name, "", region)] = RegionScale(1)
    state.memory["eu"] = MEMORY
    state.held = {PlacedTrackKey("production", "held", "", "eu"): 2}
    report = agent_pb2.AgentReport(
        workers=[
            _worker("idle", GIB),
            _worker("idle", GIB // 2, draining=True),  # on its way out: not counted
            _worker("serving", GIB, inflight=1),
            _worker("fixed", 2 * GIB),
            _worker("held", GIB),
            _worker("elsewhere", GIB),  # not placed here (any more): not a track of the room
        ]
    )
    rooms = region_rooms(state, {"eu": report})
    assert set(rooms) == {"eu"}  # us: no report, no memory; nothing to say
    eu = rooms["eu"]
    assert eu.memory == MEMORY and eu.max_replicas == 0
    by_name = {d.key.name: d for d in eu.running}
    assert sorted(by_name) == ["fixed", "held", "idle", "serving"]  # "cold" runs nothing
    assert by_name["idle"] == Demand(
        PlacedTrackKey("production", "idle", "", "eu"), 1, 0, 1, 0, GIB, evictable=True
    )
    assert not by_name["serving"].evictable  # a request in flight
    assert not by_name["held"].evictable  # a request waits for it
    fixed = by_name["fixed"]
    assert not fixed.evictable and fixed.floor == 1 and fixed.memory_bytes == 2 * GIB


def test_a_region_with_memory_and_no_report_has_room_and_nothing_running() -> None:
    state = NetworkState()
    state.memory["us"] = MEMORY
    assert region_rooms(state, {}) == {"us": RegionRoom(MEMORY)}
