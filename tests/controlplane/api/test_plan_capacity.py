"""Capacity in a plan through the real server (generated stubs, a real store file): a dry run's
plan says per region whether the deployment's workers fit now, with the region's numbers and
its versions' footprints (estimated, or measured once recorded); a real apply leaves it out.
Each region's room comes from a status provider standing in for the live one (the data plane
is out of scope here; `region_rooms` has its own tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from controlplane.api import add_api_to_server
from controlplane.autoscale.admission import Demand
from controlplane.explain_capacity import RegionRoom
from controlplane.reconcile.capacity import BASE_FOOTPRINT_BYTES, RegionMemory
from controlplane.store import Store
from controlplane.store.footprints import Footprint, record_footprints
from meshline.keys import PlacedTrackKey
from meshline.v1 import api_pb2 as api
from meshline.v1 import api_pb2_grpc
from meshline.v1.api_pb2 import Resource
from tests.controlplane.api.test_servicers import StaticStatusProvider
from tests.controlplane.store.builders import (
    deployment,
    environment,
    location,
    model,
    model_file,
    region,
)
from tests.harness.credentials import admin_aio_channel, guarded_server

GIB = 2**30
MIB = 2**20


class RoomsProvider(StaticStatusProvider):
    """Static status, and each region's room as given."""

    def __init__(self, rooms: Mapping[str, RegionRoom]) -> None:
        self.rooms = dict(rooms)

    def region_rooms(self) -> Mapping[str, RegionRoom]:
        return self.rooms


def memory(free: int, budget: int = 4 * GIB) -> RegionMemory:
    return RegionMemory(24 * GIB, 20 * GIB, budget, budget - free, 0, free, 2, 1)


@dataclass
class Served:
    store: Store
    apply: api_pb2_grpc.ApplyServiceStub
    rooms: RoomsProvider


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    store = Store.open(tmp_path / "store.db")
    server, token = guarded_server(store, tmp_path)
    rooms = RoomsProvider({})
    add_api_to_server(server, store, rooms)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = admin_aio_channel(f"127.0.0.1:{port}", token)
    try:
        yield Served(store, api_pb2_grpc.ApplyServiceStub(channel), rooms)
    finally:
        await channel.close()
        await server.stop(None)
        store.close()


def _world(tmp_path: Path) -> list[Resource]:
    return [
        region("eu", "DE"),
        region("us", "US"),
        environment("production"),
        model("m", [("v1", model_file(tmp_path))]),
    ]


def _scaled(name: str, min_replicas: int) -> Resource:
    doc = deployment(name, "m", "v1", policies=[location(["eu"])])
    doc.deployment.spec.ClearField("replicas")
    doc.deployment.spec.scaling.min_replicas = min_replicas
    doc.deployment.spec.scaling.max_replicas = 2
    return doc


async def _plan(served: Served, docs: list[Resource], dry_run: bool = True) -> api.ApplyResult:
    reply = await served.apply.Apply(api.ApplyRequest(resources=docs, dry_run=dry_run))
    (result,) = [r for r in reply.results if r.kind == "Deployment"]
    return result


async def test_a_dry_run_says_where_the_workers_fit_and_where_they_wait(
    served: Served, tmp_path: Path
) -> None:
    await served.apply.Apply(api.ApplyRequest(resources=_world(tmp_path)))
    # A worker of v1, never measured: the Torch runtime's estimate (the file is a few bytes).
    estimate = BASE_FOOTPRINT_BYTES["torch"] + 2 * len(model_file(tmp_path).read_bytes())
    served.rooms.rooms = {"eu": RegionRoom(memory(GIB)), "us": RegionRoom(memory(100 * MIB))}
    result = await _plan(served, [deployment("d", "m", "v1")])
    eu, us = result.plan.capacity
    assert (eu.region, eu.outcome, eu.workers, eu.reason) == ("eu", "starts", 1, "")
    assert (eu.footprint_bytes, eu.footprint_source) == (estimate, "estimated")
    assert (eu.memory_known, eu.memory_free_bytes, eu.memory_budget_bytes) == (True, GIB, 4 * GIB)
    assert (us.region, us.outcome) == ("us", "waits")
    assert us.reason == (
        "region 'us' has 100 MiB free of its 4.0 GiB memory budget, version 'v1' needs "
        "256 MiB: 0 of 1 wanted workers run"
    )
    assert served.store.list_deployments() == []  # a plan stores nothing
    applied = await _plan(served, [deployment("d", "m", "v1")], dry_run=False)
    assert not applied.plan.capacity  # only a plan asks


async def test_an_idle_deployment_is_named_when_it_is_stopped_to_make_room(
    served: Served, tmp_path: Path
) -> None:
    await served.apply.Apply(api.ApplyRequest(resources=_world(tmp_path)))
    old = Demand(PlacedTrackKey("production", "old", "", "eu"), 1, 0, 1, 0, GIB, evictable=True)
    served.rooms.rooms = {"eu": RegionRoom(memory(0), running=(old,))}
    result = await _plan(served, [_scaled("warm", min_replicas=1)])
    (eu,) = result.plan.capacity
    assert (eu.outcome, list(eu.stops)) == ("makes-room", ["production/old"])
    lazy = await _plan(served, [_scaled("lazy", min_replicas=0)])
    (eu,) = lazy.plan.capacity
    assert (eu.outcome, eu.workers) == ("until-invoked", 0)
    assert eu.reason.startswith("its first request would stop idle workers of production/old")


async def test_a_measured_footprint_and_a_declared_one(served: Served, tmp_path: Path) -> None:
    await served.apply.Apply(api.ApplyRequest(resources=_world(tmp_path)))
    (stored,) = served.store.get_model("m").spec.versions
    record_footprints(served.store, [Footprint(stored.sha256, "torch", 700 * MIB, "eu", "now")])
    served.rooms.rooms = {"eu": RegionRoom(memory(GIB))}
    doc = deployment("d", "m", "v1", policies=[location(["eu"])])
    (eu,) = (await _plan(served, [doc])).plan.capacity
    assert (eu.footprint_bytes, eu.footprint_source) == (700 * MIB, "measured")
    assert eu.outcome == "starts"
    doc.deployment.spec.resources.memory = "2Gi"
    (eu,) = (await _plan(served, [doc])).plan.capacity
    assert (eu.footprint_bytes, eu.footprint_source, eu.outcome) == (2 * GIB, "declared", "waits")
