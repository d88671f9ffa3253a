"""The agent stream, driven by a raw gRPC client against the real service and a real store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from controlplane.agents.registry import AgentRegistry, region_spec
from controlplane.agents.service import AgentService
from controlplane.api.registration import register_region
from controlplane.store import Store, wrap
from meshline.v1 import agent_pb2, agent_pb2_grpc, resources_pb2


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[str, Store, AgentRegistry]]:
    store = Store.open(tmp_path / "m.db")
    registry = AgentRegistry()
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentServiceServicer_to_server(
        AgentService(registry, lambda h: register_region(store, h.region, region_spec(h))), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", store, registry
    finally:
        await server.stop(None)
        store.close()


@dataclass
class AgentStream:
    call: grpc.aio.StreamStreamCall
    first: asyncio.Future[object]  # the control plane's first answer (raises if refused)

    def cancel(self) -> None:
        self.call.cancel()


async def _stream(
    address: str, hello: agent_pb2.AgentHello, queue: asyncio.Queue[object]
) -> AgentStream:
    """A raw agent: the hello, then (as the real agent does) a report once it is accepted."""
    accepted = asyncio.Event()

    async def requests() -> AsyncIterator[agent_pb2.ConnectRequest]:
        yield agent_pb2.ConnectRequest(hello=hello)
        await accepted.wait()
        yield agent_pb2.ConnectRequest(report=agent_pb2.AgentReport())
        await queue.get()  # keep the stream open until the test ends

    channel = grpc.aio.insecure_channel(address)
    call = agent_pb2_grpc.AgentServiceStub(channel).Connect(requests())
    first = asyncio.ensure_future(call.read())

    def welcome(_: object) -> None:
        if not first.cancelled() and first.exception() is None:
            accepted.set()

    first.add_done_callback(welcome)
    return AgentStream(call, first)


async def _wait(condition: object, what: str) -> None:
    for _ in range(200):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(what)


async def test_hello_registers_the_region_and_the_session(
    service: tuple[str, Store, AgentRegistry],
) -> None:
    address, store, registry = service
    queue: asyncio.Queue[object] = asyncio.Queue()
    call = await _stream(
        address,
        agent_pb2.AgentHello(
            region="eu", country="de", agent_id="a1", gateway_address="127.0.0.1:1"
        ),
        queue,
    )
    # The hello is answered first: only then does an agent send its reports.
    welcome = await call.first
    assert isinstance(welcome, agent_pb2.ConnectResponse)
    assert welcome.WhichOneof("message") == "accepted"
    await _wait(lambda: registry.reported_regions() == ["eu"], "the first report")
    assert store.get_region("eu").spec.country == "DE"
    call.cancel()
    await _wait(lambda: registry.session("eu") is None, "the session to end")


async def test_hello_registers_place_flavors_and_capacity(
    service: tuple[str, Store, AgentRegistry],
) -> None:
    address, store, registry = service
    queue: asyncio.Queue[object] = asyncio.Queue()
    call = await _stream(
        address,
        agent_pb2.AgentHello(
            region="eu-west",
            country="fr",
            continent="eu",
            flavors=resources_pb2.FlavorSet(cpu=["c5.large", "c5.large"], gpu=["a100"]),
            max_replicas=8,
            agent_id="a1",
        ),
        queue,
    )
    await _wait(lambda: registry.reported_regions() == ["eu-west"], "the first report")
    spec = store.get_region("eu-west").spec
    assert (spec.country, spec.continent, spec.max_replicas) == ("FR", "EU", 8)
    assert (list(spec.flavors.cpu), list(spec.flavors.gpu)) == (["c5.large"], ["a100"])
    call.cancel()
    await _wait(lambda: registry.session("eu-west") is None, "the session to end")


async def test_an_applied_region_wins_over_the_hello(
    service: tuple[str, Store, AgentRegistry],
) -> None:
    address, store, registry = service
    applied = resources_pb2.Region()
    applied.metadata.name = "eu"
    applied.spec.country = "DE"
    applied.spec.continent = "EU"
    applied.spec.max_replicas = 4
    store.apply([wrap(applied)])
    call = await _stream(
        address,
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
    await _wait(lambda: registry.reported_regions() == ["eu"], "the first report")
    spec = store.get_region("eu").spec
    assert (spec.country, spec.continent, spec.max_replicas) == ("DE", "EU", 4)
    assert not spec.flavors.gpu
    call.cancel()
    await _wait(lambda: registry.session("eu") is None, "the session to end")


async def test_invalid_region_facts_are_refused_naming_the_fields(
    service: tuple[str, Store, AgentRegistry],
) -> None:
    address, store, _ = service
    call = await _stream(
        address,
        agent_pb2.AgentHello(
            region="eu",
            continent="Europe",
            flavors=resources_pb2.FlavorSet(cpu=["bad flavor"]),
            max_replicas=-1,
            agent_id="a1",
        ),
        asyncio.Queue(),
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.first
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details() or ""
    for path in ("spec.continent", "spec.flavors.cpu[0]", "spec.max_replicas"):
        assert path in details, details
    assert store.list_regions() == []


async def test_invalid_hello_is_refused_naming_the_field(
    service: tuple[str, Store, AgentRegistry],
) -> None:
    address, store, _ = service
    call = await _stream(
        address,
        agent_pb2.AgentHello(region="EU_1", country="Germany", agent_id="a1"),
        asyncio.Queue(),
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.first
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "metadata.name" in (info.value.details() or "")
    assert "spec.country" in (info.value.details() or "")
    assert store.list_regions() == []


async def test_second_live_agent_for_a_region_is_refused(
    service: tuple[str, Store, AgentRegistry],
) -> None:
    address, _, registry = service
    queue: asyncio.Queue[object] = asyncio.Queue()
    first = await _stream(address, agent_pb2.AgentHello(region="eu", agent_id="a1"), queue)
    await _wait(lambda: registry.reported_regions() == ["eu"], "the first agent")
    second = await _stream(address, agent_pb2.AgentHello(region="eu", agent_id="a2"), queue)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await second.first
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "a1" in (info.value.details() or "")
    session = registry.session("eu")
    assert session is not None and session.hello.agent_id == "a1"
    # The same agent reconnecting (its stream broke) is welcome.
    again = await _stream(address, agent_pb2.AgentHello(region="eu", agent_id="a1"), queue)
    await _wait(lambda: registry.session("eu") is not session, "the reconnect")
    first.cancel()
    again.cancel()
