"""The agent stream on an mTLS port, driven by a raw gRPC client holding a region's certificate
against the real service and a real store.

The hello must name the certificate's region, and the region must be registered (at Join, or
applied); the hello's own facts are ignored."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from controlplane.agents.hello import hello_refusal
from controlplane.agents.peers import MeshPeers
from controlplane.agents.registry import AgentRegistry
from controlplane.agents.service import AgentService
from controlplane.api.registration import register_region
from controlplane.pki import MeshCA, issue_server_certificate, open_ca
from controlplane.ports import mesh_credentials as server_mesh_credentials
from controlplane.store import Store, wrap
from meshline.v1 import agent_pb2, agent_pb2_grpc, resources_pb2
from tests.harness.mesh_identity import (
    RegionIdentity,
    mesh_credentials,
    record_identity,
    region_identity,
)

EU = resources_pb2.RegionSpec(country="DE", continent="EU", max_replicas=3)


@dataclass
class Service:
    address: str
    store: Store
    registry: AgentRegistry
    ca: MeshCA
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def identity(self, region: str) -> RegionIdentity:
        """Region `region`'s certificate as its Join left it: its certificate of record."""
        made = region_identity(self.ca, region)
        record_identity(self.store, made)
        return made


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    store = Store.open(tmp_path / "m.db")
    ca = open_ca(tmp_path, None, datetime.now(UTC))
    registry = AgentRegistry()
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentServiceServicer_to_server(
        AgentService(registry, lambda h: hello_refusal(store, h), MeshPeers(ca, store)), server
    )
    own = issue_server_certificate(ca, ["127.0.0.1"], datetime.now(UTC))
    port = server.add_secure_port("127.0.0.1:0", server_mesh_credentials(own, ca))
    await server.start()
    world = Service(f"127.0.0.1:{port}", store, registry, ca)
    try:
        yield world
    finally:
        for channel in world.channels:
            await channel.close()
        await server.stop(None)
        store.close()


@dataclass
class AgentStream:
    call: grpc.aio.StreamStreamCall
    first: asyncio.Future[object]  # the control plane's first answer (raises if refused)

    def cancel(self) -> None:
        self.call.cancel()


async def _stream(
    service: Service,
    hello: agent_pb2.AgentHello,
    queue: asyncio.Queue[object],
    identity: RegionIdentity | None = None,
) -> AgentStream:
    """A raw agent holding `identity` (default: the certificate of the hello's region): the
    hello, then (as the real agent does) a report once it is accepted."""
    accepted = asyncio.Event()

    async def requests() -> AsyncIterator[agent_pb2.ConnectRequest]:
        yield agent_pb2.ConnectRequest(hello=hello)
        await accepted.wait()
        yield agent_pb2.ConnectRequest(report=agent_pb2.AgentReport())
        await queue.get()  # keep the stream open until the test ends

    shown = identity or service.identity(hello.region or "nameless")
    credentials = mesh_credentials(service.ca.bundle_pem, shown)
    channel = grpc.aio.secure_channel(service.address, credentials)
    service.channels.append(channel)
    call = agent_pb2_grpc.AgentServiceStub(channel).Connect(requests())
    first = asyncio.ensure_future(call.read())

    def welcome(_: object) -> None:
        if not first.cancelled() and first.exception() is None:
            accepted.set()

    first.add_done_callback(welcome)
    return AgentStream(call, first)


@dataclass(frozen=True)
class Refusal:
    code: grpc.StatusCode
    details: str


async def _refusal(
    service: Service, hello: agent_pb2.AgentHello, identity: RegionIdentity | None = None
) -> Refusal:
    """How the control plane refuses `hello` (from `identity`, default: the certificate of the
    hello's region), as a synchronous gRPC client sees it, in a thread.

    Not the asyncio client: its stream's one write (the hello) can be completed by Core only
    after the server's refusal closed the stream, and grpc.aio then replaces the status the
    server sent with INTERNAL "Failed execute_batch" (grpc/grpc#36066). That was this file's
    flaky refusal (INTERNAL instead of ALREADY_EXISTS, once, in a fresh clone on a busy machine).
    The synchronous client reports the server's own status whatever became of its writes."""
    shown = identity or service.identity(hello.region or "nameless")
    credentials = mesh_credentials(service.ca.bundle_pem, shown)

    def connect() -> Refusal:
        with grpc.secure_channel(service.address, credentials) as channel:
            call = agent_pb2_grpc.AgentServiceStub(channel).Connect(
                iter([agent_pb2.ConnectRequest(hello=hello)])
            )
            try:
                answer = next(call)
            except grpc.RpcError as exc:
                return Refusal(exc.code(), exc.details() or "")
            call.cancel()
        raise AssertionError(f"the hello was not refused: {answer}")

    return await asyncio.to_thread(connect)


async def _wait(condition: object, what: str) -> None:
    for _ in range(200):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(what)


async def test_a_registered_regions_agent_opens_its_stream(service: Service) -> None:
    register_region(service.store, "eu", EU)  # what its Join did
    queue: asyncio.Queue[object] = asyncio.Queue()
    call = await _stream(
        service,
        agent_pb2.AgentHello(region="eu", agent_id="a1", gateway_address="127.0.0.1:1"),
        queue,
    )
    # The hello is answered first: only then does an agent send its reports.
    welcome = await call.first
    assert isinstance(welcome, agent_pb2.ConnectResponse)
    assert welcome.WhichOneof("message") == "accepted"
    await _wait(lambda: service.registry.reported_regions() == ["eu"], "the first report")
    call.cancel()
    await _wait(lambda: service.registry.session("eu") is None, "the session to end")


async def test_the_hellos_facts_are_ignored(service: Service) -> None:
    applied = resources_pb2.Region()
    applied.metadata.name = "eu"
    applied.spec.CopyFrom(EU)
    service.store.apply([wrap(applied)])
    call = await _stream(
        service,
        agent_pb2.AgentHello(
            region="eu",
            country="US",
            continent="NA",
            flavors=resources_pb2.FlavorSet(gpu=["h100"]),
            max_replicas=99,
            agent_id="a1",
        ),
        asyncio.Queue(),
    )
    await _wait(lambda: service.registry.reported_regions() == ["eu"], "the first report")
    spec = service.store.get_region("eu").spec
    assert (spec.country, spec.continent, spec.max_replicas) == ("DE", "EU", 3)
    assert not spec.flavors.gpu
    call.cancel()


async def test_another_regions_certificate_cannot_open_the_stream(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    register_region(service.store, "eu", EU)
    register_region(service.store, "us", resources_pb2.RegionSpec(country="US"))
    refused = await _refusal(
        service,
        agent_pb2.AgentHello(region="eu", agent_id="rogue"),
        identity=service.identity("us"),
    )
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert "region 'eu'" in refused.details
    assert "region 'us'" in refused.details
    assert service.registry.session("eu") is None
    refusal = next(r for r in caplog.records if "refused" in r.getMessage())
    assert "ipv4:127.0.0.1" in refusal.getMessage() and "'eu'" in refusal.getMessage()


async def test_an_unregistered_region_must_join_again(service: Service) -> None:
    """A valid certificate of a region deleted since: refused, and the store stays empty."""
    refused = await _refusal(service, agent_pb2.AgentHello(region="gone", agent_id="a1"))
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert "join again" in refused.details
    assert service.store.list_regions() == []


async def test_a_hello_without_a_region_is_refused(service: Service) -> None:
    refused = await _refusal(service, agent_pb2.AgentHello(agent_id="a1"))
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_second_live_agent_for_a_region_is_refused(service: Service) -> None:
    registry = service.registry
    register_region(service.store, "eu", EU)
    queue: asyncio.Queue[object] = asyncio.Queue()
    first = await _stream(service, agent_pb2.AgentHello(region="eu", agent_id="a1"), queue)
    await _wait(lambda: registry.reported_regions() == ["eu"], "the first agent")
    refused = await _refusal(service, agent_pb2.AgentHello(region="eu", agent_id="a2"))
    assert refused.code == grpc.StatusCode.ALREADY_EXISTS
    assert "a1" in refused.details
    session = registry.session("eu")
    assert session is not None and session.hello.agent_id == "a1"
    # The same agent reconnecting (its stream broke) is welcome.
    again = await _stream(service, agent_pb2.AgentHello(region="eu", agent_id="a1"), queue)
    await _wait(lambda: registry.session("eu") is not session, "the reconnect")
    first.cancel()
    again.cancel()
