"""JoinService through a real grpc.aio server: Join on a TLS port (the token is the credential),
Renew on an mTLS port (the client certificate is). Every refusal has its code, names why without
repeating the secret, is logged with the caller's address, and stores nothing."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from controlplane.agents.join import JoinEvent, JoinServicer, JoinSettings
from controlplane.agents.registry import AgentRegistry
from controlplane.pki import MeshCA, issue_region_certificate, issue_server_certificate, open_ca
from controlplane.store import NotFoundError, Store, wrap
from controlplane.store.join_tokens import create_join_token, get_join_token, revoke_join_token
from controlplane.store.region_certificates import region_certificates
from meshline import join_token
from meshline.certs import KeyAndCsr, new_key_and_csr, read_certificate_facts
from meshline.v1 import agent_pb2, agent_pb2_grpc
from meshline.v1.resources_pb2 import Region, RegionSpec

MESH_ADDRESS = "10.0.0.1:7443"
LIFETIME = timedelta(hours=1)
FACTS = RegionSpec(country="DE", continent="EU", max_replicas=3)


@dataclass
class Clock:
    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    store: Store
    ca: MeshCA
    clock: Clock
    joins: list[JoinEvent]
    tls_address: str
    mtls_address: str
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def tls(self) -> agent_pb2_grpc.JoinServiceStub:
        """A caller with no certificate yet: it trusts the mesh CA, as an agent given ca.crt."""
        credentials = grpc.ssl_channel_credentials(root_certificates=self.ca.bundle_pem)
        channel = grpc.aio.secure_channel(self.tls_address, credentials)
        self.channels.append(channel)
        return agent_pb2_grpc.JoinServiceStub(channel)

    def mtls(self, key_pem: bytes, certificate_pem: str | bytes) -> agent_pb2_grpc.JoinServiceStub:
        chain = certificate_pem.encode() if isinstance(certificate_pem, str) else certificate_pem
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.ca.bundle_pem, private_key=key_pem, certificate_chain=chain
        )
        channel = grpc.aio.secure_channel(self.mtls_address, credentials)
        self.channels.append(channel)
        return agent_pb2_grpc.JoinServiceStub(channel)

    def token(self, region: str = "eu", expires_in: float | None = None) -> str:
        text = join_token.mint()
        expires_at = None if expires_in is None else self.clock.now + expires_in
        create_join_token(
            self.store, text.token_id, text.secret, region, FACTS, expires_at, self.clock.now
        )
        return str(text)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = Store.open(tmp_path / "meshline.db")
    clock = Clock()
    now = datetime.fromtimestamp(clock.now, UTC)
    ca = open_ca(tmp_path, None, now)
    joins: list[JoinEvent] = []
    settings = JoinSettings(MESH_ADDRESS, LIFETIME)
    servicer = JoinServicer(store, ca, settings, AgentRegistry(), clock, joins.append)
    server = grpc.aio.server()
    agent_pb2_grpc.add_JoinServiceServicer_to_server(servicer, server)
    own = issue_server_certificate(ca, ["127.0.0.1"], now)
    pair = [(own.key_pem, own.certificate_pem)]
    tls_port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(pair))
    mtls = grpc.ssl_server_credentials(
        pair, root_certificates=ca.bundle_pem, require_client_auth=True
    )
    mtls_port = server.add_secure_port("127.0.0.1:0", mtls)
    await server.start()
    world = World(store, ca, clock, joins, f"127.0.0.1:{tls_port}", f"127.0.0.1:{mtls_port}")
    try:
        yield world
    finally:
        for channel in world.channels:
            await channel.close()
        await server.stop(None)
        store.close()


async def _join(
    world: World, token: str, region: str = "eu", made: KeyAndCsr | None = None
) -> tuple[agent_pb2.JoinResponse, KeyAndCsr]:
    made = made or new_key_and_csr()
    request = agent_pb2.JoinRequest(region=region, join_token=token, csr_pem=made.csr_pem)
    return await world.tls().Join(request, timeout=10), made


async def test_join_signs_the_region_and_registers_it_from_the_token(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="controlplane.agents.join")
    token = world.token()
    reply, _ = await _join(world, token)
    facts = read_certificate_facts(reply.certificate_pem)
    assert facts.region == "eu" and facts.not_after - facts.not_before > LIFETIME
    leaf = x509.load_pem_x509_certificate(reply.certificate_pem.encode())
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(reply.ca_pem.encode()))
    assert reply.ca_pem.encode() == world.ca.bundle_pem and reply.mesh_address == MESH_ADDRESS
    assert reply.expires_at == facts.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    region = world.store.get_region("eu")
    assert (region.spec.country, region.spec.continent, region.spec.max_replicas) == ("DE", "EU", 3)
    text = join_token.parse(token)
    used = get_join_token(world.store, text.token_id)
    assert used.uses == 1 and used.last_used_at == world.clock.now
    recorded = region_certificates(world.store)["eu"]
    assert recorded.serial == facts.serial and recorded.not_after == facts.not_after.timestamp()
    assert [(e.region, e.token_id, e.serial, e.registered) for e in world.joins] == [
        ("eu", text.token_id, facts.serial, True)
    ]
    assert world.joins[0].peer.startswith("ipv4:127.0.0.1:")
    joined = [r for r in caplog.records if "joined with join token" in r.getMessage()]
    assert len(joined) == 1 and world.joins[0].peer in joined[0].getMessage()
    assert text.secret not in caplog.text


async def test_an_applied_region_keeps_its_facts(world: World) -> None:
    region = Region()
    region.metadata.name = "eu"
    region.spec.country = "FR"
    world.store.apply([wrap(region)])
    await _join(world, world.token())
    assert world.store.get_region("eu").spec.country == "FR"
    assert world.joins[0].registered is False


def _nothing_stored(world: World, token: str) -> None:
    text = join_token.parse(token)
    with pytest.raises(NotFoundError):
        world.store.get_region("eu")
    with pytest.raises(NotFoundError):
        world.store.get_region("us")
    assert get_join_token(world.store, text.token_id).uses == 0
    assert region_certificates(world.store) == {} and world.joins == []


async def _refused(
    world: World, caplog: pytest.LogCaptureFixture, request: agent_pb2.JoinRequest
) -> tuple[grpc.StatusCode, str]:
    caplog.set_level(logging.WARNING, logger="controlplane.agents.join")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await world.tls().Join(request, timeout=10)
    details = str(caught.value.details())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "from ipv4:127.0.0.1:" in warnings[0].getMessage()
    assert details in warnings[0].getMessage()
    secret = request.join_token.partition(".")[2]
    if secret:
        assert secret not in details and secret not in caplog.text
    return caught.value.code(), details


async def test_another_regions_token_is_permission_denied(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    token = world.token("eu")
    csr = new_key_and_csr().csr_pem
    request = agent_pb2.JoinRequest(region="us", join_token=token, csr_pem=csr)
    code, details = await _refused(world, caplog, request)
    token_id = join_token.parse(token).token_id
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details == f"join token {token_id} is for region 'eu', not 'us'"
    _nothing_stored(world, token)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("expired", "expired at"),
        ("revoked", "was revoked at"),
        ("wrong secret", ": the secret is wrong"),
        ("unknown", "does not exist"),
        ("malformed", "not a join token: it should look like mlj_<id>.<secret>"),
        ("empty", "no join token given"),
    ],
)
async def test_a_token_that_does_not_open_is_unauthenticated(
    world: World, caplog: pytest.LogCaptureFixture, case: str, expected: str
) -> None:
    token = world.token(expires_in=60)
    text = join_token.parse(token)
    given = token
    if case == "expired":
        world.clock.now += 60
    elif case == "revoked":
        revoke_join_token(world.store, text.token_id, world.clock.now)
    elif case == "wrong secret":
        given = str(join_token.JoinTokenText(text.token_id, join_token.mint().secret))
    elif case == "unknown":
        given = str(join_token.JoinTokenText(join_token.mint().token_id, text.secret))
    elif case == "malformed":
        given = text.secret
    elif case == "empty":
        given = ""
    csr = new_key_and_csr().csr_pem
    code, details = await _refused(
        world, caplog, agent_pb2.JoinRequest(region="eu", join_token=given, csr_pem=csr)
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED and expected in details
    assert text.secret not in details
    _nothing_stored(world, token)


async def test_a_malformed_csr_is_invalid(world: World, caplog: pytest.LogCaptureFixture) -> None:
    token = world.token()
    request = agent_pb2.JoinRequest(region="eu", join_token=token, csr_pem="not a csr")
    code, details = await _refused(world, caplog, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("csr_pem: not a PEM certificate signing request")
    _nothing_stored(world, token)


async def test_a_bad_region_name_is_invalid(world: World, caplog: pytest.LogCaptureFixture) -> None:
    token = world.token()
    request = agent_pb2.JoinRequest(region="EU", join_token=token, csr_pem="")
    code, details = await _refused(world, caplog, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("region: 'EU' is not")
    _nothing_stored(world, token)


async def test_renew_over_mtls_issues_a_fresh_certificate(world: World) -> None:
    reply, made = await _join(world, world.token())
    first = read_certificate_facts(reply.certificate_pem)
    world.clock.now += 60  # later (within the backdating: TLS checks the real clock)
    fresh = new_key_and_csr()
    stub = world.mtls(made.key_pem, reply.certificate_pem)
    renewed = await stub.Renew(agent_pb2.RenewRequest(csr_pem=fresh.csr_pem), timeout=10)
    second = read_certificate_facts(renewed.certificate_pem)
    assert second.region == "eu" and second.serial != first.serial
    assert second.not_after > first.not_after
    leaf = x509.load_pem_x509_certificate(renewed.certificate_pem.encode())
    assert leaf.public_key() == x509.load_pem_x509_csr(fresh.csr_pem.encode()).public_key()
    assert renewed.ca_pem.encode() == world.ca.bundle_pem
    assert region_certificates(world.store)["eu"].serial == second.serial
    # The fresh certificate renews in turn.
    again = world.mtls(fresh.key_pem, renewed.certificate_pem)
    third = await again.Renew(agent_pb2.RenewRequest(csr_pem=new_key_and_csr().csr_pem))
    assert read_certificate_facts(third.certificate_pem).serial not in (first.serial, second.serial)


async def _renew_refused(
    stub: agent_pb2_grpc.JoinServiceStub, csr: str | None = None
) -> tuple[grpc.StatusCode, str]:
    request = agent_pb2.RenewRequest(csr_pem=csr or new_key_and_csr().csr_pem)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Renew(request, timeout=10)
    return caught.value.code(), str(caught.value.details())


async def test_renew_refusals(world: World) -> None:
    reply, made = await _join(world, world.token())
    serial = region_certificates(world.store)["eu"].serial
    # Without a client certificate (a port wired without mTLS): nobody.
    code, details = await _renew_refused(world.tls())
    assert code == grpc.StatusCode.UNAUTHENTICATED and details.startswith("no client certificate")
    # The control plane's own certificate names no region.
    own = issue_server_certificate(world.ca, [], datetime.fromtimestamp(world.clock.now, UTC))
    code, details = await _renew_refused(world.mtls(own.key_pem, own.certificate_pem))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details == "the client certificate names spiffe://meshline/controlplane, not a region"
    # A malformed CSR from a valid region.
    stub = world.mtls(made.key_pem, reply.certificate_pem)
    code, details = await _renew_refused(stub, "garbage")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("csr_pem: not a PEM")
    # Past its lifetime (by the control plane's clock), a certificate renews nothing.
    world.clock.now += LIFETIME.total_seconds() + 1
    code, details = await _renew_refused(stub)
    assert code == grpc.StatusCode.UNAUTHENTICATED and "not now" in details
    # A deleted region's agent must join again.
    world.clock.now -= LIFETIME.total_seconds()
    assert region_certificates(world.store)["eu"].serial == serial  # no refusal recorded any
    world.store.delete_region("eu")
    code, details = await _renew_refused(stub)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details == "region 'eu' was deleted: its agent must join again with a join token"
    # Its certificate of record went with it: nothing recorded since.
    assert "eu" not in region_certificates(world.store)


async def test_another_cas_certificate_never_gets_through_the_handshake(
    world: World, tmp_path: Path
) -> None:
    rogue_ca = open_ca(tmp_path / "rogue", None, datetime.now(UTC))
    made = new_key_and_csr()
    rogue = issue_region_certificate(rogue_ca, made.csr_pem, "eu", datetime.now(UTC))
    code, _ = await _renew_refused(world.mtls(made.key_pem, rogue.certificate_pem))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert region_certificates(world.store) == {}
