"""The control plane's own certificate is renewed while it runs: a real grpc.aio server with the
credentials the API and mesh ports use, read by raw TLS handshakes (the certificate each new
connection is served) and gRPC calls. The renewal clock is the test's; TLS checks the real one.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from controlplane.pki import MeshCA, open_ca
from controlplane.pki.ca import load_ca
from controlplane.server_identity import ServerIdentity, expiry_warning
from meshline.certs import serial_hex
from tests.controlplane.pki.builders import ca_certificate, ec_key, write_pem
from tests.harness.mesh_identity import RegionIdentity, mesh_credentials, region_identity

LIFETIME = timedelta(hours=3)  # renewed two hours after it was made


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Served:
    identity: ServerIdentity
    clock: Clock
    ca: MeshCA
    port: int
    tmp: Path

    def handshake_serial(self, client: RegionIdentity | None = None) -> str:
        """The serial of the certificate a new TLS connection is served."""
        context = ssl.create_default_context(cadata=self.ca.bundle_pem.decode())
        context.set_alpn_protocols(["h2"])
        if client is not None:
            chain, key = self.tmp / "client.crt", self.tmp / "client.key"
            chain.write_text(client.chain_pem)
            key.write_text(client.key_pem)
            context.load_cert_chain(chain, key)
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock,
            context.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return serial_hex(x509.load_der_x509_certificate(der).serial_number)


async def _serve(
    ca: MeshCA,
    tmp_path: Path,
    client_ca: bytes | None,
    lifetime: timedelta,
    started_ago: timedelta = timedelta(0),
) -> AsyncIterator[Served]:
    """A server started `started_ago` by the test's clock (its first certificate made then:
    still valid now by the real clock, which TLS checks)."""
    clock = Clock(datetime.now(UTC) - started_ago)
    identity = ServerIdentity(ca, ["127.0.0.1"], clock, lifetime)
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_secure_port("127.0.0.1:0", identity.credentials(client_ca))
    await server.start()
    try:
        yield Served(identity, clock, ca, port, tmp_path)
    finally:
        await server.stop(None)


@pytest.fixture
async def api_port(tmp_path: Path) -> AsyncIterator[Served]:
    ca = open_ca(tmp_path, None, datetime.now(UTC))
    async for served in _serve(ca, tmp_path, None, LIFETIME, timedelta(hours=2, minutes=1)):
        yield served


async def test_the_certificate_is_renewed_at_two_thirds_for_new_connections(
    api_port: Served,
) -> None:
    first = api_port.identity.current.facts.serial
    assert await asyncio.to_thread(api_port.handshake_serial) == first
    api_port.clock.now += timedelta(hours=1, minutes=58)  # not yet due
    assert await asyncio.to_thread(api_port.handshake_serial) == first
    api_port.clock.now = datetime.now(UTC)  # two hours and a minute after it was made
    renewed = await asyncio.to_thread(api_port.handshake_serial)
    assert renewed != first and renewed == api_port.identity.current.facts.serial
    assert await asyncio.to_thread(api_port.handshake_serial) == renewed  # once only
    # gRPC clients trusting the mesh CA keep calling, over the renewed certificate.
    credentials = grpc.ssl_channel_credentials(api_port.ca.bundle_pem)
    async with grpc.aio.secure_channel(f"127.0.0.1:{api_port.port}", credentials) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_the_mesh_port_still_asks_for_a_client_certificate_after_renewal(
    tmp_path: Path,
) -> None:
    ca = open_ca(tmp_path, None, datetime.now(UTC))
    started = timedelta(hours=2, minutes=1)
    async for mesh in _serve(ca, tmp_path, ca.bundle_pem, LIFETIME, started):
        eu = region_identity(ca, "eu")
        first = await asyncio.to_thread(mesh.handshake_serial, eu)
        mesh.clock.now = datetime.now(UTC)
        renewed = await asyncio.to_thread(mesh.handshake_serial, eu)
        assert renewed != first
        address = f"127.0.0.1:{mesh.port}"
        async with grpc.aio.secure_channel(address, mesh_credentials(ca.bundle_pem, eu)) as ok:
            await health_pb2_grpc.HealthStub(ok).Check(health_pb2.HealthCheckRequest())
        nobody = mesh_credentials(ca.bundle_pem, None)
        async with grpc.aio.secure_channel(address, nobody) as refused:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await health_pb2_grpc.HealthStub(refused).Check(
                    health_pb2.HealthCheckRequest(), timeout=10
                )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_at_the_cas_end_the_certificate_is_kept_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A CA ending in two hours: the certificate ends with it, renewing gains nothing."""
    now = datetime.now(UTC)
    key = ec_key()
    cert_file, key_file = write_pem(
        tmp_path,
        [
            ca_certificate(
                key, not_before=now - timedelta(days=1), not_after=now + timedelta(hours=2)
            )
        ],
        key,
    )
    ca = load_ca(cert_file, key_file, now, user_supplied=True)
    async for served in _serve(ca, tmp_path, None, timedelta(days=365), timedelta(hours=1)):
        first = served.identity.current
        assert first.facts.not_after == ca.certificate.not_valid_after_utc
        warning = expiry_warning(first, now)
        assert warning is not None and "expires at" in warning and "mesh CA" in warning
        served.clock.now = datetime.now(UTC) + timedelta(hours=1, minutes=30)  # past 2/3
        for _ in range(2):
            assert await asyncio.to_thread(served.handshake_serial) == first.facts.serial
        assert sum("mesh CA" in r.getMessage() for r in caplog.records) == 1  # said once


def test_a_certificate_with_a_long_life_ahead_is_no_warning(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    ca = open_ca(tmp_path, None, now)
    assert expiry_warning(ServerIdentity(ca, []).current, now) is None
    short = ServerIdentity(ca, [], lifetime=timedelta(days=29)).current
    assert expiry_warning(short, now) is not None
