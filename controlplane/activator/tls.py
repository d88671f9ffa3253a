"""The activator's TLS: the control plane's certificate served, a mesh certificate asked of
every client (mutual TLS on both listeners, or no connection).

Gateways call with the certificate the control plane gives their Envoy over SDS and check that
the activator's names `spiffe://meshline/controlplane` (controlplane/translate/tls.py). It is
the certificate the API and mesh ports serve, renewed as the control plane runs
(`ServerIdentity`): grpc asks for it before each handshake; the REST listener's context takes
the new one when a request (a health check, every few seconds) finds it renewed, for the
handshakes after. The key stays in memory: grpc takes PEM bytes, and Python's ssl module, which
loads a key from a path only, reads it from an anonymous in-memory file.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from controlplane.pki import MeshCA, ServerCertificate
from controlplane.pki.peer import PEER_CERT_KEY, AuthContext, verified_peer
from controlplane.server_identity import ServerIdentity
from meshline.certs import CertificateFacts


@dataclass(frozen=True)
class ActivatorTls:
    """What the listeners serve (`identity`: the control plane's certificate, URI SAN its
    SPIFFE id, renewed as it runs) and the CA every client's certificate must chain to."""

    identity: ServerIdentity
    ca: MeshCA

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """mTLS: a client without a certificate of the mesh CA gets no connection."""
        return self.identity.credentials(self.ca.bundle_pem)

    def http_tls(self) -> HttpTls:
        """The REST listener's mTLS, serving the current certificate."""
        return HttpTls(self)


class HttpTls:
    """The REST listener's context: TLS 1.3 (Envoy on the other end), a client certificate of
    the mesh CA required, HTTP/1.1; `refresh` loads a renewed certificate into it."""

    def __init__(self, tls: ActivatorTls) -> None:
        self._identity = tls.identity
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_3
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_verify_locations(cadata=tls.ca.bundle_pem.decode())
        self.context.set_alpn_protocols(["http/1.1"])
        self.serial = ""
        self._load(tls.identity.current)

    def refresh(self) -> None:
        """Serve the certificate the control plane serves now (renewed when due) from the next
        handshake on; connections already open keep theirs."""
        certificate = self._identity.refreshed()
        if certificate.facts.serial != self.serial:
            self._load(certificate)

    def _load(self, certificate: ServerCertificate) -> None:
        with in_memory_file(certificate.certificate_pem + certificate.key_pem) as path:
            self.context.load_cert_chain(path)
        self.serial = certificate.facts.serial


def verified_caller(auth_context: AuthContext, ca: MeshCA) -> CertificateFacts:
    """The facts of the caller's certificate, checked again against the mesh CA (the handshake
    did, but a listener wired without client authentication must not lend an identity);
    PeerUnauthenticatedError when there is none."""
    return verified_peer(auth_context, ca, datetime.now(UTC))


def auth_context_of(der: bytes | None) -> AuthContext:
    """The REST listener's peer certificate (DER, as Python's ssl gives it) in the form grpc's
    auth context has it, so both listeners check callers one way."""
    if not der:
        return {}
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    return {PEER_CERT_KEY: (pem,)}


# Linux: a file that lives in memory only.
HAS_MEMFD = hasattr(os, "memfd_create")


@contextlib.contextmanager
def in_memory_file(data: bytes, *, anonymous: bool = HAS_MEMFD) -> Iterator[str]:
    """A path that reads `data` and is gone on exit: an anonymous memory file (`anonymous`,
    Linux), else a file readable by its owner only (0600 from the first byte) in a private
    temporary directory, deleted on exit."""
    if anonymous:
        fd = os.memfd_create("meshline-activator-tls", os.MFD_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="meshline-activator-") as directory:
        path = Path(directory) / "tls.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        yield str(path)
