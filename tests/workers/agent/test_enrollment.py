"""The agent gets and keeps its region's certificate: Join on a TLS port with the join token,
Renew on an mTLS port with the current certificate, against the real JoinService (grpc.aio,
SQLite, the mesh CA). A refusal ends the agent with the control plane's reason and leaves
nothing behind; a restart with a valid certificate needs no token."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2_grpc

from controlplane.agents.hello import hello_refusal
from controlplane.agents.join import JoinServicer, JoinSettings
from controlplane.agents.peers import MeshPeers
from controlplane.agents.registry import AgentRegistry
from controlplane.agents.service import AgentService
from controlplane.pki import MeshCA, issue_server_certificate, open_ca
from controlplane.ports import api_credentials, mesh_credentials
from controlplane.store import Store
from controlplane.store.join_tokens import create_join_token, revoke_join_token
from controlplane.store.region_certificates import (
    RegionCertificate,
    record_certificate,
    region_certificates,
)
from meshline import join_token
from meshline.certs import read_certificate_facts
from meshline.v1 import agent_pb2, agent_pb2_grpc
from meshline.v1.resources_pb2 import RegionSpec
from tests.harness.mesh_identity import stranger_ca
from tests.workers.agent.helpers import agent_config, until
from workers.agent.enrollment import (
    ApiAccess,
    CertificateNotAcceptedError,
    EnrollmentRefusedError,
    IdentityKeeper,
    renewal_refusal,
    start_identity,
    utc_now,
)
from workers.agent.identity import IdentityPaths, load_identity
from workers.agent.session import AgentRejectedError, ControlPlaneSession
from workers.agent.supervisor import Supervisor


@dataclass
class ControlPlane:
    store: Store
    ca: MeshCA
    ca_file: Path
    api_address: str
    mesh_address: str
    registry: AgentRegistry

    def token(self, region: str = "eu", expires_in_s: float | None = None) -> str:
        text = join_token.mint()
        now = datetime.now(UTC).timestamp()
        expires = None if expires_in_s is None else now + expires_in_s
        facts = RegionSpec(country="DE")
        create_join_token(self.store, text.token_id, text.secret, region, facts, expires, now)
        return str(text)


@contextlib.asynccontextmanager
async def control_plane(state: Path, lifetime: timedelta) -> AsyncIterator[ControlPlane]:
    """Join (and health) on a TLS port, Renew and the agent stream on an mTLS port, as the
    control plane serves them."""
    store = Store.open(state / "meshline.db")
    ca = open_ca(state, None, datetime.now(UTC))
    own = issue_server_certificate(ca, ["127.0.0.1"], datetime.now(UTC))
    api, mesh = grpc.aio.server(), grpc.aio.server()
    mesh_port = mesh.add_secure_port("127.0.0.1:0", mesh_credentials(own, ca))
    registry = AgentRegistry()
    joins = JoinServicer(store, ca, JoinSettings(f"127.0.0.1:{mesh_port}", lifetime), registry)
    for server in (api, mesh):
        agent_pb2_grpc.add_JoinServiceServicer_to_server(joins, server)
    agent_pb2_grpc.add_AgentServiceServicer_to_server(
        AgentService(registry, lambda hello: hello_refusal(store, hello), MeshPeers(ca, store)),
        mesh,
    )
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), api)
    api_port = api.add_secure_port("127.0.0.1:0", api_credentials(own))
    await api.start()
    await mesh.start()
    try:
        yield ControlPlane(
            store,
            ca,
            state / "ca.crt",
            f"127.0.0.1:{api_port}",
            f"127.0.0.1:{mesh_port}",
            registry,
        )
    finally:
        await api.stop(None)
        await mesh.stop(None)
        store.close()


@pytest.fixture
async def cp(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with control_plane(tmp_path / "cp", timedelta(hours=1)) as plane:
        yield plane


async def _start(cp: ControlPlane, state: Path, token: str, region: str = "eu") -> IdentityKeeper:
    return await start_identity(state, region, cp.api_address, cp.ca_file, token)


async def test_the_first_start_joins_and_a_restart_needs_no_token(
    cp: ControlPlane, tmp_path: Path
) -> None:
    state = tmp_path / "agent"
    keeper = await _start(cp, state, cp.token())
    facts = keeper.current.facts
    assert facts.region == "eu" and keeper.mesh_address == cp.mesh_address
    assert cp.store.get_region("eu").spec.country == "DE"  # registered from the token
    assert load_identity(IdentityPaths.of(state)) == keeper.current
    again = await _start(cp, state, "")  # the restart: no token at all
    assert again.current.facts.serial == facts.serial


@pytest.mark.parametrize("case", ["another region's", "expired", "revoked", "none"])
async def test_a_refused_join_ends_with_the_reason_and_leaves_nothing(
    cp: ControlPlane, tmp_path: Path, case: str
) -> None:
    token = {
        "another region's": cp.token("us"),
        "expired": cp.token("eu", expires_in_s=-1),
        "revoked": cp.token("eu"),
        "none": "",
    }[case]
    if case == "revoked":
        now = datetime.now(UTC).timestamp()
        revoke_join_token(cp.store, join_token.parse(token).token_id, now)
    expected = {
        "another region's": "is for region 'us', not 'eu'",
        "expired": "expired at",
        "revoked": "was revoked",
        "none": "no join token: create one (`meshline regions token create eu`)",
    }[case]
    state = tmp_path / "agent"
    with pytest.raises(EnrollmentRefusedError, match=re.escape(expected)) as refused:
        await _start(cp, state, token)
    assert token.partition(".")[2] not in str(refused.value) or not token
    assert load_identity(IdentityPaths.of(state)) is None
    assert cp.store.list_regions() == []


async def test_a_control_plane_the_ca_file_does_not_vouch_for_is_refused(
    cp: ControlPlane, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.crt"
    other.write_bytes(stranger_ca().bundle_pem)
    with pytest.raises(EnrollmentRefusedError, match="check --ca-file"):
        await start_identity(tmp_path / "agent", "eu", cp.api_address, other, cp.token())
    assert cp.store.list_regions() == []


async def test_the_first_join_needs_the_ca(cp: ControlPlane, tmp_path: Path) -> None:
    with pytest.raises(EnrollmentRefusedError, match="--ca-file: the mesh CA to trust"):
        await start_identity(tmp_path / "agent", "eu", cp.api_address, None, cp.token())


async def test_the_keeper_renews_before_expiry_and_hands_envoy_each_certificate(
    tmp_path: Path,
) -> None:
    async with control_plane(tmp_path / "cp", timedelta(seconds=3)) as plane:
        keeper = await _start(plane, tmp_path / "agent", plane.token())
        first = keeper.current
        task = asyncio.create_task(keeper.run())
        try:
            await until(lambda: keeper.renewals >= 2, "two renewals", timeout_s=30)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        current = keeper.current
        assert current.facts.serial != first.facts.serial and current.key_pem != first.key_pem
        assert current.expires_at > first.expires_at
        stored = load_identity(IdentityPaths.of(tmp_path / "agent"))
        assert stored == current
        sds = IdentityPaths.of(tmp_path / "agent").envoy_sds.read_text()
        assert read_certificate_facts(current.certificate_pem).serial == current.facts.serial
        assert current.key_pem.strip().splitlines()[1] in sds
        # The renewed certificate opens the mesh port (a new connection uses it).
        async with keeper.channel() as channel:
            await asyncio.wait_for(channel.channel_ready(), 10)


async def test_a_refused_renewal_ends_the_keeper(tmp_path: Path) -> None:
    """A region deleted since its agent joined: Renew refuses, the agent must join again."""
    async with control_plane(tmp_path / "cp", timedelta(seconds=3)) as plane:
        keeper = await _start(plane, tmp_path / "agent", plane.token())
        plane.store.delete_region("eu")
        with pytest.raises(EnrollmentRefusedError, match="join again with a join token"):
            await asyncio.wait_for(keeper.run(), 30)


async def test_a_certificate_that_expired_unrenewed_is_replaced_by_joining_again(
    tmp_path: Path,
) -> None:
    """The control plane was away past the certificate's end: the agent joins again with the
    token it started with (it may still be valid), and Envoy's file gets the new pair."""
    async with control_plane(tmp_path / "cp", timedelta(seconds=1)) as plane:
        keeper = await _start(plane, tmp_path / "agent", plane.token())
        first = keeper.current
        await until(keeper.expired, "the certificate to expire")
        await asyncio.wait_for(keeper._renew_once(), 30)
        assert keeper.current.facts.serial != first.facts.serial and not keeper.expired()
        assert load_identity(IdentityPaths.of(tmp_path / "agent")) == keeper.current


async def test_without_a_token_an_expired_certificate_ends_the_agent(tmp_path: Path) -> None:
    async with control_plane(tmp_path / "cp", timedelta(seconds=1)) as plane:
        await _start(plane, tmp_path / "agent", plane.token())
        # A restart from the stored certificate: no token in its environment.
        keeper = await _start(plane, tmp_path / "agent", "")
        await until(keeper.expired, "the certificate to expire")
        with pytest.raises(EnrollmentRefusedError, match="restart the agent with a new join"):
            await asyncio.wait_for(keeper._renew_once(), 30)


def _lagging(keeper: IdentityKeeper, token: str, behind: timedelta) -> IdentityKeeper:
    """The same agent with a clock `behind` the control plane's (and the token it started
    with, "" for none)."""
    return IdentityKeeper(
        keeper.paths,
        keeper.current,
        keeper.ca_pem,
        ApiAccess(keeper._api.address, token),
        now=lambda: utc_now() - behind,
    )


async def _past_its_end(keeper: IdentityKeeper) -> None:
    """Until the certificate expired by the control plane's (the real) clock."""
    await until(lambda: not keeper.current.valid_at(utc_now()), "the certificate to expire")
    assert not keeper.expired()  # the agent's own clock says it is still good


async def test_a_certificate_the_control_plane_thinks_expired_is_replaced_by_joining_again(
    tmp_path: Path,
) -> None:
    """The control plane's clock is ahead: its TLS handshake refuses the certificate the
    agent still thinks valid (the mesh port closes the connection while the API answers).
    That is no refusal for good: the agent joins again with its token."""
    async with control_plane(tmp_path / "cp", timedelta(seconds=2)) as plane:
        token = plane.token()
        started = await _start(plane, tmp_path / "agent", token)
        keeper = _lagging(started, token, timedelta(seconds=60))
        first = keeper.current.facts.serial
        await _past_its_end(keeper)
        await asyncio.wait_for(keeper._renew_once(), 30)
        assert keeper.current.facts.serial != first and keeper.generation == 1
        assert region_certificates(plane.store)["eu"].serial == keeper.current.facts.serial
        assert load_identity(IdentityPaths.of(tmp_path / "agent")) == keeper.current


async def test_without_a_token_a_certificate_thought_expired_stops_the_agent_saying_so(
    tmp_path: Path,
) -> None:
    async with control_plane(tmp_path / "cp", timedelta(seconds=2)) as plane:
        started = await _start(plane, tmp_path / "agent", plane.token())
        keeper = _lagging(started, "", timedelta(seconds=60))
        await _past_its_end(keeper)
        with pytest.raises(EnrollmentRefusedError) as stopped:
            await asyncio.wait_for(keeper._renew_once(), 30)
        message = str(stopped.value)
        assert "closes the connection while the control plane's API answers" in message
        assert "no longer accepts the certificate" in message
        assert "no join token to join again with" in message
        assert "--ca-file" not in message


async def test_a_certificate_replaced_by_another_join_is_replaced_by_joining_again(
    cp: ControlPlane, tmp_path: Path
) -> None:
    """Another agent joined region eu while this one was away: Renew says the certificate is
    not the region's any more (UNAUTHENTICATED), and the agent joins again with its token."""
    token = cp.token()
    keeper = await _start(cp, tmp_path / "agent", token)
    mine = keeper.current.facts.serial
    await _start(cp, tmp_path / "other", cp.token())
    assert region_certificates(cp.store)["eu"].serial != mine
    await asyncio.wait_for(keeper._renew_once(), 30)
    assert region_certificates(cp.store)["eu"].serial == keeper.current.facts.serial != mine
    # Without a token, the same answer stops the agent, with the control plane's words.
    await _start(cp, tmp_path / "other", "")
    other = await _start(cp, tmp_path / "third", cp.token())
    restarted = await _start(cp, tmp_path / "agent", "")
    assert other.current.facts.serial == region_certificates(cp.store)["eu"].serial
    with pytest.raises(EnrollmentRefusedError) as stopped:
        await asyncio.wait_for(restarted._renew_once(), 30)
    message = str(stopped.value)
    assert f"renewing certificate {keeper.current.facts.serial} refused by" in message
    assert "is no longer region 'eu''s" in message and "no join token to join again" in message


def _rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


@pytest.mark.parametrize(
    ("code", "details", "meaning"),
    [
        (grpc.StatusCode.UNAUTHENTICATED, "certificate 01 is no longer region 'eu''s", "rejoin"),
        (grpc.StatusCode.UNAUTHENTICATED, "the client certificate ... not now", "rejoin"),
        (
            grpc.StatusCode.UNAVAILABLE,
            "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Tls "
            "handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: CERTIFICATE_VERIFY_FAILED",
            "rejoin",
        ),
        (grpc.StatusCode.PERMISSION_DENIED, "region 'eu' was deleted", "stop"),
        (grpc.StatusCode.UNAVAILABLE, "Connection refused", "retry"),
        (grpc.StatusCode.UNAVAILABLE, "ipv4:127.0.0.1:1: Socket closed", "retry"),
    ],
)
def test_what_a_failed_renewal_means(code: grpc.StatusCode, details: str, meaning: str) -> None:
    """Not accepted (join again), a refusal for good (stop), or worth another try (a closed
    socket is asked about: is the control plane's API answering?)."""
    verdict = renewal_refusal(_rpc_error(code, details), "01", "127.0.0.1:1")
    if meaning == "retry":
        assert verdict is None
    elif meaning == "rejoin":
        assert isinstance(verdict, CertificateNotAcceptedError)
        assert "--ca-file" not in str(verdict) and details in str(verdict)
    else:
        assert isinstance(verdict, EnrollmentRefusedError)
        assert not isinstance(verdict, CertificateNotAcceptedError)


async def test_a_stream_refused_while_the_certificate_changes_is_tried_again(
    cp: ControlPlane, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A join again ends the agent's stream before its answer reaches the keeper: a refusal
    seen meanwhile is tried again, not taken for good; once the identity is settled, the
    same refusal ends the session."""
    keeper = await _start(cp, tmp_path / "agent", cp.token())
    supervisor = Supervisor(agent_config(tmp_path), on_change=lambda: None, mesh=keeper)
    hello = agent_pb2.AgentHello(region="eu", agent_id="a1", gateway_address="127.0.0.1:1")
    session = ControlPlaneSession(hello, supervisor, keeper, report_interval_s=5)
    running = asyncio.create_task(session.run())
    try:
        await until(lambda: cp.registry.session("eu") is not None, "the stream")
        keeper.exchanging = True  # the keeper is joining again...
        record_certificate(  # ...and the control plane recorded the new certificate
            cp.store, RegionCertificate("eu", "0f", utc_now().timestamp() + 3600, 0.0)
        )
        cp.registry.evict("eu", "region 'eu' joined again")
        # Refused (UNAUTHENTICATED: the old certificate) and tried again, for as long as the
        # keeper is still changing it.
        caplog.set_level(logging.WARNING, logger="controlplane.agents.peers")

        def refusals() -> int:
            return sum("is no longer region 'eu''s" in r.getMessage() for r in caplog.records)

        await until(lambda: refusals() >= 2, "two refused reconnections")
        assert not running.done()
        keeper.exchanging = False  # settled, and still the old one: a refusal for good
        with pytest.raises(AgentRejectedError, match="is no longer region 'eu''s"):
            await asyncio.wait_for(running, 30)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError, AgentRejectedError):
            await running
