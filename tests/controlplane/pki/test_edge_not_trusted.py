"""An edge certificate cannot pose as the control plane, nor as a member of the mesh.

A rogue region (anyone with a join token) asks for an edge certificate for the names the CLI
and agents dial the control plane at. Issued through the real path (the control plane's CAs
opened in a state dir, `GatewayIdentities` answering a hello), then served by a fake control
plane: the CLI's `connect()` and the agent's join refuse it at the handshake, and no token ever
reaches the fake server. The same fake server with the control plane's own certificate is
trusted (so the refusals come from the certificate, not from the test's server). The mesh port
refuses the edge certificate as a client certificate too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cli.client.api import connect
from cli.client.token_lookup import ApiCredential, TokenSource
from controlplane.pki import (
    MeshCA,
    issue_server_certificate,
    open_ca,
    open_edge_ca,
)
from controlplane.pki.gateway import issue_gateway_certificate
from controlplane.ports import mesh_credentials
from controlplane.reconcile.identities import GatewayIdentities
from meshline.v1 import agent_pb2, agent_pb2_grpc
from meshline.wire import AUTHORIZATION_HEADER, CA_CERT_FILE
from workers.agent.enrollment import EnrollmentRefusedError, join

ADMIN_TOKEN = "admin-token-the-cli-sends"
JOIN_TOKEN = "join-token-a-new-agent-sends"
# What the CLI and agents dial a control plane on this host at.
CONTROLPLANE_NAMES = ("127.0.0.1", "localhost")


@dataclass
class CallsSeen(grpc.ServerInterceptor):
    """Every call that reached the fake server, with its metadata (where a token would be)."""

    calls: list[tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=list)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        self.calls.append((details.method, tuple(details.invocation_metadata)))  # type: ignore[attr-defined]
        return continuation(details)


class _Join(agent_pb2_grpc.JoinServiceServicer):
    def Join(self, request: agent_pb2.JoinRequest, context: Any) -> agent_pb2.JoinReply:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "the fake control plane took the token")
        raise AssertionError("abort returned")


@dataclass(frozen=True)
class Served:
    chain_pem: str
    key_pem: str


@contextmanager
def fake_controlplane(served: Served) -> Iterator[tuple[int, CallsSeen]]:
    """A gRPC server on loopback serving `served` (health and Join), recording every call."""
    seen = CallsSeen()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[seen])
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    agent_pb2_grpc.add_JoinServiceServicer_to_server(_Join(), server)
    credentials = grpc.ssl_server_credentials(
        [(served.key_pem.encode(), served.chain_pem.encode())]
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield port, seen
    finally:
        server.stop(grace=None)


@dataclass(frozen=True)
class ControlPlaneCAs:
    state_dir: Path
    mesh: MeshCA
    identities: GatewayIdentities

    @property
    def ca_file(self) -> Path:
        """The mesh CA's certificate: what the CLI and agents trust for the control plane."""
        return self.state_dir / CA_CERT_FILE

    def rogue_edge_certificate(self, now: datetime) -> Served:
        """What a joined region gets when its agent asks for edge TLS for the control
        plane's names (before the hello check refused those: here the issuing itself)."""
        hello = agent_pb2.EdgeTls(mode="mesh-ca", names=list(CONTROLPLANE_NAMES))
        edge = self.identities.edge_tls({"rogue": hello}, now)["rogue"]
        assert edge.certificate is not None
        return Served(edge.certificate.certificate_chain, edge.certificate.private_key)


@pytest.fixture
def cas(tmp_path: Path) -> ControlPlaneCAs:
    now = datetime.now(UTC)
    state = tmp_path / "controlplane"
    mesh = open_ca(state, None, now)
    edge = open_edge_ca(state, None, mesh, now)
    return ControlPlaneCAs(state, mesh, GatewayIdentities(mesh, timedelta(hours=1), edge))


def _health_through_cli(address: str, ca_file: Path) -> grpc.RpcError | None:
    credential = ApiCredential(ADMIN_TOKEN, TokenSource.OPTION, certificate_authority=ca_file)
    channel = connect(address, credential)
    try:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    except grpc.RpcError as exc:
        return exc
    finally:
        channel.close()
    return None


def _tokens(seen: CallsSeen) -> list[str]:
    return [v for _, metadata in seen.calls for k, v in metadata if k == AUTHORIZATION_HEADER]


@pytest.mark.parametrize("name", CONTROLPLANE_NAMES)
def test_the_cli_refuses_an_edge_certificate_for_the_control_planes_name(
    cas: ControlPlaneCAs, name: str
) -> None:
    with fake_controlplane(cas.rogue_edge_certificate(datetime.now(UTC))) as (port, seen):
        refused = _health_through_cli(f"{name}:{port}", cas.ca_file)
    assert refused is not None
    assert refused.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert "CERTIFICATE_VERIFY_FAILED" in (refused.details() or "")  # type: ignore[attr-defined]
    assert seen.calls == []  # no call, so no admin token, reached it


def test_the_cli_trusts_the_control_planes_own_certificate(cas: ControlPlaneCAs) -> None:
    """The fake server itself is sound: with the certificate the control plane serves, the
    CLI's call and its token get through."""
    own = issue_server_certificate(cas.mesh, ["127.0.0.1"], datetime.now(UTC))
    served = Served(own.certificate_pem.decode(), own.key_pem.decode())
    with fake_controlplane(served) as (port, seen):
        assert _health_through_cli(f"127.0.0.1:{port}", cas.ca_file) is None
    assert _tokens(seen) == [f"Bearer {ADMIN_TOKEN}"]


def test_a_regions_mesh_certificate_names_no_host_so_it_cannot_pose_either(
    cas: ControlPlaneCAs,
) -> None:
    """The mesh CA signs server-usable certificates for regions too, but they name only a
    SPIFFE id: the hostname check fails, even for a region named like the host dialled."""
    issued = issue_gateway_certificate(cas.mesh, "localhost", datetime.now(UTC), timedelta(hours=1))
    with fake_controlplane(Served(issued.chain_pem, issued.key_pem)) as (port, seen):
        for name in CONTROLPLANE_NAMES:
            refused = _health_through_cli(f"{name}:{port}", cas.ca_file)
            assert refused is not None, name
    assert seen.calls == []


async def test_the_agents_join_refuses_an_edge_certificate_and_keeps_its_token(
    cas: ControlPlaneCAs,
) -> None:
    ca_pem = cas.ca_file.read_text()
    with fake_controlplane(cas.rogue_edge_certificate(datetime.now(UTC))) as (port, seen):
        for name in CONTROLPLANE_NAMES:
            with pytest.raises(EnrollmentRefusedError, match="no TLS connection to"):
                await join(f"{name}:{port}", ca_pem, "eu", JOIN_TOKEN)
    assert seen.calls == []  # the join token never left the agent


async def test_the_agents_join_reaches_a_server_with_the_control_planes_certificate(
    cas: ControlPlaneCAs,
) -> None:
    own = issue_server_certificate(cas.mesh, ["127.0.0.1"], datetime.now(UTC))
    served = Served(own.certificate_pem.decode(), own.key_pem.decode())
    with (
        fake_controlplane(served) as (port, seen),
        pytest.raises(EnrollmentRefusedError, match="the fake control plane took"),
    ):
        await join(f"127.0.0.1:{port}", cas.ca_file.read_text(), "eu", JOIN_TOKEN)
    assert [method for method, _ in seen.calls] == ["/meshline.v1.JoinService/Join"]


def test_the_mesh_port_refuses_an_edge_certificate_as_a_client(cas: ControlPlaneCAs) -> None:
    """The control plane's mesh port takes only client certificates of the mesh CA: an edge
    certificate (another CA, server use only) gets no connection."""
    own = issue_server_certificate(cas.mesh, ["127.0.0.1"], datetime.now(UTC))
    rogue = cas.rogue_edge_certificate(datetime.now(UTC))
    seen = CallsSeen()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=[seen])
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_secure_port("127.0.0.1:0", mesh_credentials(own, cas.mesh))
    server.start()
    try:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=cas.mesh.bundle_pem,
            private_key=rogue.key_pem.encode(),
            certificate_chain=rogue.chain_pem.encode(),
        )
        with (
            grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel,
            pytest.raises(grpc.RpcError) as refused,
        ):
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    finally:
        server.stop(grace=None)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert seen.calls == []
