"""Clients of the activator's listeners, as a gateway calls them (mTLS with its region's
certificate) and as strangers do (no certificate, another CA's, the control plane's own), and
the world the activator resolves requests against."""

from __future__ import annotations

import asyncio
import functools
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from controlplane.activator import Activator, ActivatorServer, HoldRequest, HoldTarget
from controlplane.pki import MeshCA
from controlplane.server_identity import ServerIdentity
from meshline.certs import serial_hex
from meshline.keys import PlacedTrackKey
from tests.harness.peer_tls import (
    Identity,
    client_context,
    control_plane_identity,
    issue_identity,
    new_ca,
)

MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


@dataclass
class World:
    """What the reconciler would answer: one cold target, and a switch for readiness."""

    key: PlacedTrackKey
    ready: bool = False
    changes: int = 0
    timeout_s: float = 5.0
    # The gateway region of every request the activator resolved.
    gateways: list[str] = field(default_factory=list)

    def resolve(self, request: HoldRequest) -> HoldTarget | str:
        self.gateways.append(request.gateway)
        if request.deployment != self.key[1]:
            return f"no route for {request.deployment}"
        return HoldTarget(self.key, self.timeout_s)

    def changed(self) -> None:
        self.changes += 1


@dataclass(frozen=True)
class Served:
    world: World
    activator: Activator
    server: ActivatorServer


@dataclass(frozen=True)
class TestMesh:
    """The mesh CA with the control plane's certificate (what the activator serves), and a
    stranger's CA."""

    ca: MeshCA
    server: ServerIdentity
    stranger: MeshCA

    def identity(self, region: str, signer: MeshCA | None = None) -> Identity:
        """Region `region`'s certificate ("": the control plane's kind, naming no region)."""
        ca = signer or self.ca
        return control_plane_identity(ca) if not region else issue_identity(ca, region)

    def grpc_credentials(
        self, region: str | None, signer: MeshCA | None = None
    ) -> grpc.ChannelCredentials:
        """TLS trusting the mesh CA, showing `region`'s certificate (None: none)."""
        if region is None:
            return grpc.ssl_channel_credentials(root_certificates=self.ca.bundle_pem)
        identity = self.identity(region, signer)
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.bundle_pem,
            private_key=identity.key_pem.encode(),
            certificate_chain=identity.chain_pem.encode(),
        )


@functools.cache
def mesh() -> TestMesh:
    ca = new_ca()
    return TestMesh(ca, ServerIdentity(ca, ["127.0.0.1"]), new_ca())


async def grpc_call(
    server: ActivatorServer,
    headers: dict[str, str],
    region: str | None = "eu",
    signer: MeshCA | None = None,
    message: bytes = b"\x0a\x05fraud",
) -> grpc.aio.AioRpcError:
    """One ModelInfer with `region`'s certificate from `signer` (the mesh CA by default); the
    activator never answers a result, so the call always ends in an error."""
    credentials = mesh().grpc_credentials(region, signer)
    target = f"127.0.0.1:{server.grpc_port}"
    async with grpc.aio.secure_channel(target, credentials) as channel:
        call = channel.unary_unary(MODEL_INFER)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(message, metadata=tuple(headers.items()), timeout=30)
    return caught.value


def http_context(
    files: Path, region: str | None = "eu", signer: MeshCA | None = None
) -> ssl.SSLContext:
    """A TLS client context for the REST listener (as `grpc_call` chooses the certificate)."""
    identity = None if region is None else mesh().identity(region, signer)
    return client_context(mesh().ca.bundle_pem.decode(), identity, files)


def https_url(server: ActivatorServer, path: str) -> str:
    return f"https://127.0.0.1:{server.http_port}{path}"


async def served_serial(port: int, files: Path) -> str:
    """The serial of the certificate a new TLS connection to `port` is served (eu's client
    certificate shown; the server's not checked, only read)."""
    context = http_context(files)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return serial_hex(x509.load_der_x509_certificate(der).serial_number)
