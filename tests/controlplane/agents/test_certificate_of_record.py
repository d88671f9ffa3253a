"""A region's identity is its certificate of record, tied to its connected agent: the control
plane's Join (TLS port) and mesh port (mTLS: Renew, the agent stream, Envoy's ADS, artifact
downloads) as `meshline controlplane` wires them, over a real store, the real ADS server and
raw gRPC clients holding real certificates. The control plane's clock is the test's (TLS checks
the real one: certificates live an hour, the clock moves by minutes).

- A second agent cannot join while the region's agent is connected, across its renewals.
- A certificate the CA issued to the region earlier (before a renewal, past the overlap; or
  before a new join) renews nothing and opens nothing new: no agent stream, no ADS, no
  download. A join ends the streams opened with an earlier certificate.
- A renewal whose reply was lost is asked for again with the old certificate, in the overlap.
- A join that cannot be stored keeps nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from controlplane.agents.hello import hello_refusal
from controlplane.agents.join import JoinEvent, JoinServicer, JoinSettings
from controlplane.agents.mesh_services import AdsGate, MeshArtifacts
from controlplane.agents.peers import MeshPeers
from controlplane.agents.registry import AgentRegistry
from controlplane.agents.service import AgentService
from controlplane.api.servicers import ModelServicer
from controlplane.pki import MeshCA, issue_server_certificate, open_ca
from controlplane.ports import api_credentials, mesh_credentials
from controlplane.store import NotFoundError, Store
from controlplane.store.artifacts import ArtifactStore
from controlplane.store.join_tokens import create_join_token, get_join_token
from controlplane.store.region_certificates import certificate_of_record, region_certificates
from controlplane.xds import CLUSTER
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.server import AdsServer
from meshline import join_token
from meshline.certs import new_key_and_csr, read_certificate_facts
from meshline.v1 import agent_pb2, agent_pb2_grpc, api_pb2, api_pb2_grpc
from meshline.v1.resources_pb2 import RegionSpec
from tests.controlplane.xds.ads_client import AdsClient

LIFETIME = timedelta(hours=1)
OVERLAP = timedelta(seconds=60)
FACTS = RegionSpec(country="DE", continent="EU")
UNKNOWN_DIGEST = "0" * 64


def _whole_second() -> float:
    """Now, to the second: MeshPeers reads the clock as a datetime (microseconds), so a
    clock with finer digits would read a hair early, and a check at the exact end of the
    overlap would fall inside it half the time."""
    return float(int(time.time()))


@dataclass
class Clock:
    now: float = field(default_factory=_whole_second)

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Held:
    """A certificate of the region and its key, as an agent keeps them."""

    key_pem: bytes
    chain_pem: str

    @property
    def serial(self) -> str:
        return read_certificate_facts(self.chain_pem).serial


@dataclass
class ControlPlane:
    store: Store
    ca: MeshCA
    clock: Clock
    registry: AgentRegistry
    joins: list[JoinEvent]
    api_address: str
    mesh_address: str
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def _channel(self, address: str, credentials: grpc.ChannelCredentials) -> grpc.aio.Channel:
        channel = grpc.aio.secure_channel(address, credentials)
        self.channels.append(channel)
        return channel

    def mesh_credentials(self, held: Held) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.bundle_pem,
            private_key=held.key_pem,
            certificate_chain=held.chain_pem.encode(),
        )

    def mesh(self, held: Held) -> grpc.aio.Channel:
        return self._channel(self.mesh_address, self.mesh_credentials(held))

    def token(self) -> str:
        text = join_token.mint()
        create_join_token(self.store, text.token_id, text.secret, "eu", FACTS, None, self.clock())
        return str(text)

    async def join(self, token: str) -> Held:
        made = new_key_and_csr()
        credentials = grpc.ssl_channel_credentials(root_certificates=self.ca.bundle_pem)
        stub = agent_pb2_grpc.JoinServiceStub(self._channel(self.api_address, credentials))
        request = agent_pb2.JoinRequest(region="eu", join_token=token, csr_pem=made.csr_pem)
        reply = await stub.Join(request, timeout=10)
        return Held(made.key_pem, reply.certificate_pem)

    async def renew(self, held: Held) -> Held:
        made = new_key_and_csr()
        stub = agent_pb2_grpc.JoinServiceStub(self.mesh(held))
        reply = await stub.Renew(agent_pb2.RenewRequest(csr_pem=made.csr_pem), timeout=10)
        return Held(made.key_pem, reply.certificate_pem)

    async def envoy(self, held: Held) -> AdsClient:
        """An Envoy of node eu holding `held`: its first response came (else it raises)."""
        client = AdsClient(self.mesh(held), "eu")
        await client.request(CLUSTER)
        await client.recv()
        return client

    async def download(self, held: Held) -> None:
        """A download of an unknown artifact: NOT_FOUND once past the gate."""
        stub = api_pb2_grpc.ModelServiceStub(self.mesh(held))
        request = api_pb2.DownloadArtifactRequest(sha256=UNKNOWN_DIGEST)
        async for _ in stub.DownloadArtifact(request, timeout=10):
            pass

    def later(self, seconds: float) -> None:
        self.clock.now += seconds


@pytest.fixture
async def cp(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    store = Store.open(tmp_path / "meshline.db")
    clock = Clock()
    ca = open_ca(tmp_path, None, datetime.now(UTC))
    registry = AgentRegistry()
    cache = SnapshotCache(epoch=store.epoch)
    cache.set_resources("eu", {})  # eu's configuration: empty, but served
    peers = MeshPeers(ca, store, lambda: datetime.fromtimestamp(clock.now, UTC))
    gate = AdsGate(AdsServer(cache), peers)
    joins: list[JoinEvent] = []
    servicer = JoinServicer(
        store,
        ca,
        JoinSettings("unused:1", LIFETIME, OVERLAP),
        registry,
        clock,
        joins.append,
        lambda region, serial: gate.end_streams(region, serial, f"{region} joined again"),
    )
    api, mesh = grpc.aio.server(), grpc.aio.server()
    agent_pb2_grpc.add_JoinServiceServicer_to_server(servicer, api)
    agent_pb2_grpc.add_JoinServiceServicer_to_server(servicer, mesh)
    agent_pb2_grpc.add_AgentServiceServicer_to_server(
        AgentService(registry, lambda hello: hello_refusal(store, hello), peers), mesh
    )
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(gate, mesh)
    models = ModelServicer(store, ArtifactStore(tmp_path / "artifacts"))
    api_pb2_grpc.add_ModelServiceServicer_to_server(MeshArtifacts(models, peers), mesh)
    own = issue_server_certificate(ca, ["127.0.0.1"], datetime.now(UTC))
    api_port = api.add_secure_port("127.0.0.1:0", api_credentials(own))
    mesh_port = mesh.add_secure_port("127.0.0.1:0", mesh_credentials(own, ca))
    await api.start()
    await mesh.start()
    plane = ControlPlane(
        store, ca, clock, registry, joins, f"127.0.0.1:{api_port}", f"127.0.0.1:{mesh_port}"
    )
    try:
        yield plane
    finally:
        for channel in plane.channels:
            await channel.close()
        await api.stop(None)
        await mesh.stop(None)
        store.close()


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(what)


@dataclass
class AgentStream:
    """A raw agent's stream: the hello, a report once accepted, then open until cancelled."""

    call: grpc.aio.StreamStreamCall
    first: asyncio.Future[object]

    async def end(self) -> grpc.aio.AioRpcError:
        """How the control plane ended the stream, once accepted: no write of this client is
        in flight by then (its report was received), so grpc.aio keeps the server's status
        (see _stream_refusal for a refused hello)."""
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            while True:
                await asyncio.wait_for(self.call.read(), 10)
        return ended.value


async def _agent(cp: ControlPlane, held: Held, agent_id: str = "a1") -> AgentStream:
    accepted = asyncio.Event()
    hello = agent_pb2.AgentHello(region="eu", agent_id=agent_id, gateway_address="127.0.0.1:1")

    async def requests() -> AsyncIterator[agent_pb2.ConnectRequest]:
        yield agent_pb2.ConnectRequest(hello=hello)
        await accepted.wait()
        yield agent_pb2.ConnectRequest(report=agent_pb2.AgentReport())
        await asyncio.Event().wait()  # open until the call is cancelled

    call = agent_pb2_grpc.AgentServiceStub(cp.mesh(held)).Connect(requests())
    first = asyncio.ensure_future(call.read())
    first.add_done_callback(
        lambda f: accepted.set() if not f.cancelled() and f.exception() is None else None
    )
    return AgentStream(call, first)


async def _connected(cp: ControlPlane, held: Held, agent_id: str = "a1") -> AgentStream:
    stream = await _agent(cp, held, agent_id)
    await stream.first
    await _until(lambda: cp.registry.reported_regions() == ["eu"], "the agent's report")
    return stream


async def _refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call  # type: ignore[misc]
    return refused.value


@dataclass(frozen=True)
class Refusal:
    code: grpc.StatusCode
    details: str


async def _stream_refusal(
    cp: ControlPlane, held: Held, open_stream: Callable[[grpc.Channel], Iterator[object]]
) -> Refusal:
    """How the mesh port refuses a stream `open_stream` opens with `held` (one request, then
    half-closed), as a synchronous gRPC client sees it, in a thread.

    Not the asyncio client: a write of its that Core completes only after the server's refusal
    closed the stream makes grpc.aio replace the server's status with INTERNAL "Failed
    execute_batch" (grpc/grpc#36066); the synchronous client reports the server's own status
    whatever became of its writes. Unary calls (Renew, a download) have no such write."""
    credentials = cp.mesh_credentials(held)

    def read() -> Refusal:
        with grpc.secure_channel(cp.mesh_address, credentials) as channel:
            call = open_stream(channel)
            try:
                answer = next(call)
            except grpc.RpcError as exc:
                return Refusal(exc.code(), exc.details() or "")
        # (Closing the channel cancelled the call.)
        raise AssertionError(f"the stream was not refused: {answer}")

    return await asyncio.to_thread(read)


def _agent_stream(agent_id: str) -> Callable[[grpc.Channel], Iterator[object]]:
    hello = agent_pb2.AgentHello(region="eu", agent_id=agent_id, gateway_address="127.0.0.1:1")
    request = agent_pb2.ConnectRequest(hello=hello)
    return lambda channel: agent_pb2_grpc.AgentServiceStub(channel).Connect(
        iter([request]), timeout=10
    )


def _envoy_stream(channel: grpc.Channel) -> Iterator[object]:
    """An Envoy of node eu asking for clusters."""
    request = discovery_pb2.DiscoveryRequest(
        type_url=CLUSTER, node=base_pb2.Node(id="eu", cluster="test")
    )
    return ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources(
        iter([request]), timeout=10
    )


async def _unary_refusal(call: object) -> Refusal:
    error = await _refused(call)
    return Refusal(error.code(), error.details() or "")


async def _opens_nothing(cp: ControlPlane, held: Held, why: str) -> None:
    """`held` renews nothing, opens no agent stream, fetches no configuration, downloads
    nothing: each refused as not the region's certificate, and nothing is recorded."""
    record = certificate_of_record(cp.store, "eu")
    for refusal in (
        await _unary_refusal(cp.renew(held)),
        await _stream_refusal(cp, held, _agent_stream("intruder")),
        await _stream_refusal(cp, held, _envoy_stream),
        await _unary_refusal(cp.download(held)),
    ):
        assert refusal.code == grpc.StatusCode.UNAUTHENTICATED, refusal.details
        assert why in refusal.details, refusal.details
    session = cp.registry.session("eu")
    assert session is None or session.hello.agent_id != "intruder"
    assert certificate_of_record(cp.store, "eu") == record


async def test_a_second_agent_cannot_join_while_the_first_is_connected(cp: ControlPlane) -> None:
    first = await cp.join(cp.token())
    stream = await _connected(cp, first)
    second_token = cp.token()
    error = await _refused(cp.join(second_token))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = error.details() or ""
    assert "region 'eu' already has a connected agent (a1, gateway 127.0.0.1:1" in details
    assert get_join_token(cp.store, join_token.parse(second_token).token_id).uses == 0
    assert region_certificates(cp.store)["eu"].serial == first.serial and len(cp.joins) == 1
    # Its renewals keep it the region's agent: the stream stands for each new certificate.
    renewed = await cp.renew(first)
    cp.later(OVERLAP.total_seconds() + 1)  # the first certificate is past its overlap
    again = await _refused(cp.join(second_token))
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    await cp.envoy(renewed)  # and it keeps working
    await _opens_nothing(cp, first, "is no longer region 'eu''s")
    # Once it is gone, another agent may take the region.
    stream.call.cancel()
    await _until(lambda: cp.registry.session("eu") is None, "the stream to end")
    taken = await cp.join(second_token)
    assert region_certificates(cp.store)["eu"].serial == taken.serial
    await cp.envoy(taken)
    for earlier in (first, renewed):
        await _opens_nothing(cp, earlier, "is no longer region 'eu''s")


async def test_a_renewed_certificate_opens_nothing_past_the_overlap(cp: ControlPlane) -> None:
    old = await cp.join(cp.token())
    new = await cp.renew(old)
    record = region_certificates(cp.store)["eu"]
    assert (record.serial, record.previous_serial) == (new.serial, old.serial)
    # In the overlap the old one still gets in: the agent's Envoy may reconnect before it
    # read the new file.
    envoy = await cp.envoy(old)
    await envoy.close()
    cp.later(OVERLAP.total_seconds())
    await _opens_nothing(cp, old, f"the region's certificate is {new.serial}")
    # The new one does all of it.
    await cp.envoy(new)
    await _connected(cp, new)
    error = await _refused(cp.download(new))
    assert error.code() == grpc.StatusCode.NOT_FOUND  # past the gate: no such artifact
    newer = await cp.renew(new)
    assert region_certificates(cp.store)["eu"].serial == newer.serial


async def test_a_renewal_whose_reply_was_lost_is_asked_for_again(cp: ControlPlane) -> None:
    old = await cp.join(cp.token())
    lost = await cp.renew(old)  # the agent never got this one
    cp.later(5)
    got = await cp.renew(old)
    assert region_certificates(cp.store)["eu"].serial == got.serial
    await cp.envoy(got)
    await _opens_nothing(cp, lost, f"the region's certificate is {got.serial}")


async def test_a_join_ends_the_streams_of_the_certificate_it_replaced(cp: ControlPlane) -> None:
    """The agent's certificate expired while its stream stayed open (the control plane's
    clock): it holds the region no more, so its own join again is let in, and its stream and
    its Envoy's are ended (the stream UNAVAILABLE: reconnect with the new certificate)."""
    old = await cp.join(cp.token())
    stream = await _connected(cp, old)
    envoy = await cp.envoy(old)
    cp.later(LIFETIME.total_seconds() + 60)
    await cp.join(cp.token())  # signed for the test's clock: not used over TLS here
    ended = await stream.end()
    assert ended.code() == grpc.StatusCode.UNAVAILABLE
    assert "region 'eu' joined again" in (ended.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as cut:
        await envoy.recv()
    assert cut.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert cut.value.details() == "eu joined again"
    assert cp.registry.session("eu") is None


async def test_a_join_that_cannot_be_stored_keeps_nothing(cp: ControlPlane) -> None:
    """The certificate's row cannot be written: no region registered, no use counted, no
    record, no audit event; the agent is told to try again (UNAVAILABLE)."""
    with cp.store.companion() as conn:
        conn.execute(
            "CREATE TRIGGER no_room BEFORE INSERT ON region_certificates "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    token = cp.token()
    error = await _refused(cp.join(token))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "nothing was kept" in (error.details() or "")
    with pytest.raises(NotFoundError):
        cp.store.get_region("eu")
    assert get_join_token(cp.store, join_token.parse(token).token_id).uses == 0
    assert region_certificates(cp.store) == {} and cp.joins == []
