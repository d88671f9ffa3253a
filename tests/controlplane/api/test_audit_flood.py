"""A flood of calls with no credential, through a real grpc.aio server, its guard and a real
store: the earlier changes stay in the audit log; the refusals are in it too, a burst one by
one and the rest summarized per peer; the log's own bounds hold whatever the limiter lets by.

The clock of the guard is the test's (no waiting): time moves when the test says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from controlplane.api import add_api_to_server
from controlplane.api.authn import Authenticator
from controlplane.api.bootstrap import ensure_admin_token
from controlplane.api.guard import AuditLog, ManagementGuard
from controlplane.api.refusal_limiter import RefusalLimits, UnauthenticatedRefusals
from controlplane.store import Store
from controlplane.store.audit import AuditBounds, count_events
from meshline.v1 import api_pb2 as api
from meshline.v1 import api_pb2_grpc
from meshline.v1.resources_pb2 import AuditEvent
from tests.controlplane.api.test_servicers import StaticStatusProvider
from tests.controlplane.store.builders import environment, region
from tests.harness.credentials import admin_aio_channel

T0 = 1_800_000_000.0
LIMITS = RefusalLimits(burst=5, refill_s=600.0, summary_interval_s=60.0)
# Small enough that 300 refusals recorded one by one would push every change out.
BOUNDS = AuditBounds(events=50, unauthenticated=20)


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    store: Store
    guard: ManagementGuard
    clock: Clock
    admin: grpc.aio.Channel
    anonymous: grpc.aio.Channel
    forged: grpc.aio.Channel

    async def events(self) -> list[AuditEvent]:
        stub = api_pb2_grpc.AuditServiceStub(self.admin)
        reply = await stub.ListAuditEvents(api.ListAuditEventsRequest(limit=1000))
        return list(reply.events)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Api]:
    store = Store.open(tmp_path / "meshline.db")
    clock = Clock()
    ensure_admin_token(store, tmp_path, T0)
    token = (tmp_path / "admin-token").read_text().strip()
    guard = ManagementGuard(
        store,
        Authenticator(store, clock=clock),
        AuditLog(store, clock, BOUNDS),
        UnauthenticatedRefusals(LIMITS),
    )
    server = grpc.aio.server(interceptors=[guard])
    add_api_to_server(server, store, StaticStatusProvider())
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    address = f"127.0.0.1:{port}"
    channels = [
        admin_aio_channel(address, token),
        grpc.aio.insecure_channel(address),
        admin_aio_channel(address, token[:-4] + "AAAA"),
    ]
    try:
        yield Api(store, guard, clock, *channels)
    finally:
        for channel in channels:
            await channel.close()
        await server.stop(None)
        store.close()


async def test_a_flood_of_anonymous_refusals_evicts_no_change_and_is_summarized(
    served: Api,
) -> None:
    admin = api_pb2_grpc.ApplyServiceStub(served.admin)
    for name in ("eu", "us"):
        await admin.Apply(api.ApplyRequest(resources=[region(name, "DE")]))
    await admin.Apply(api.ApplyRequest(resources=[environment("production")]))
    real = [(e.sequence, e.verb, e.name) for e in await served.events()]
    assert len(real) == 4  # the admin key's creation and three applies

    for i in range(300):
        stub = api_pb2_grpc.RegionServiceStub(served.forged if i % 2 else served.anonymous)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.DeleteRegion(api.DeleteRegionRequest(name="eu"))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    regions = api_pb2_grpc.RegionServiceStub(served.admin)
    assert len((await regions.ListRegions(api.ListRegionsRequest())).regions) == 2

    events = await served.events()
    assert [(e.sequence, e.verb, e.name) for e in events[:4]] == real  # nothing evicted
    refused = events[4:]
    assert len(refused) == LIMITS.burst  # the burst, one by one; the rest not yet summarized
    assert all(
        (e.principal, e.verb, e.kind, e.name, e.outcome, e.code)
        == ("anonymous", "delete", "Region", "eu", "refused", "UNAUTHENTICATED")
        for e in refused
    )
    assert refused[0].detail.startswith("no credential") and "(from 127.0.0.1)" in (
        refused[0].detail
    )

    # a minute on, the periodic pass writes one summary for the peer
    served.clock.now += LIMITS.summary_interval_s
    assert served.guard.summarize_refusals() == 1
    (summary,) = (await served.events())[4 + LIMITS.burst :]
    assert (summary.principal, summary.outcome, summary.code) == (
        "anonymous",
        "refused",
        "UNAUTHENTICATED",
    )
    assert summary.detail.startswith(
        f"{300 - LIMITS.burst} more unauthenticated calls refused from 127.0.0.1"
    )
    assert served.guard.summarize_refusals() == 0  # said once

    # a change after the flood is recorded as ever
    await admin.Apply(api.ApplyRequest(resources=[region("ap", "JP")]))
    assert (await served.events())[-1].name == "ap"


async def test_what_the_limiter_lets_by_stays_within_its_own_bound(served: Api) -> None:
    """Peers spread over many addresses each get a burst; those refusals still never push a
    change out: the store bounds them apart."""
    admin = api_pb2_grpc.ApplyServiceStub(served.admin)
    await admin.Apply(api.ApplyRequest(resources=[region("eu", "DE")]))
    real = [(e.sequence, e.name) for e in await served.events()]
    stub = api_pb2_grpc.RegionServiceStub(served.anonymous)
    for _ in range(BOUNDS.events + 10):
        # every call as from a peer never seen (the test's server has one loopback peer)
        served.guard.refusals = UnauthenticatedRefusals(LIMITS)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.DeleteRegion(api.DeleteRegionRequest(name="eu"))
    assert count_events(served.store, unauthenticated=True) == BOUNDS.unauthenticated
    assert [(e.sequence, e.name) for e in (await served.events())[: len(real)]] == real
