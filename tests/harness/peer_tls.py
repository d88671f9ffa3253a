"""Clients of a gateway's peer listener (mTLS) for tests: with a region's certificate of the
mesh CA (a test playing a gateway), with none, or with one a stranger's CA signed.

    identity = issue_identity(ca, "eu-west")
    status, body = peer_request(peer_address, ca_pem, identity, tmp_path, headers)

The private keys go to files (0600) under the test's own directory: Python's ssl module loads a
client certificate from files only.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from controlplane.pki.ca import MeshCA, create_ca, load_ca
from controlplane.pki.gateway import issue_gateway_certificate
from controlplane.pki.issue import issue_server_certificate
from meshline.wire import CA_CERT_FILE

LIFETIME = timedelta(hours=1)


@dataclass(frozen=True)
class Identity:
    """A certificate chain and its key (PEM), as a TLS client shows them."""

    chain_pem: str
    key_pem: str = field(repr=False)


def new_ca() -> MeshCA:
    """A CA of its own: what signs the certificates of a stranger to the mesh."""
    return create_ca(datetime.now(UTC))


def mesh_ca(controlplane_state: Path) -> MeshCA:
    """The CA a running control plane signs with (its state directory's ca.crt and ca.key)."""
    return load_ca(
        controlplane_state / CA_CERT_FILE, controlplane_state / "ca.key", datetime.now(UTC), False
    )


def issue_identity(ca: MeshCA, region: str) -> Identity:
    """A region's certificate (URI SAN spiffe://meshline/region/<region>) signed by `ca`."""
    issued = issue_gateway_certificate(ca, region, datetime.now(UTC), LIFETIME)
    return Identity(issued.chain_pem, issued.key_pem)


def control_plane_identity(ca: MeshCA) -> Identity:
    """A certificate of the mesh CA that names no region (the control plane's own kind)."""
    issued = issue_server_certificate(ca, ["127.0.0.1"], datetime.now(UTC), LIFETIME)
    return Identity(issued.certificate_pem.decode(), issued.key_pem.decode())


def client_context(ca_pem: str, identity: Identity | None, files: Path) -> ssl.SSLContext:
    """TLS 1.3 to a peer listener, trusting `ca_pem`; the server's name is not checked (mesh
    certificates name a SPIFFE id, not a host), its chain is."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=ca_pem)
    context.set_alpn_protocols(["http/1.1"])
    if identity is not None:
        files.mkdir(parents=True, exist_ok=True)
        cert = files / f"client-{os.getpid()}-{id(identity)}.crt"
        key = cert.with_suffix(".key")
        cert.write_text(identity.chain_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(identity.key_pem)
        context.load_cert_chain(cert, key)
    return context


@dataclass(frozen=True)
class PeerAnswer:
    """What the peer listener answered: an HTTP status and body, or the connection error."""

    status: int = 0
    body: dict[str, object] = field(default_factory=dict)
    error: str = ""

    @property
    def refused(self) -> bool:
        return self.status == 0


def peer_request(
    address: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    context: ssl.SSLContext | None,
) -> PeerAnswer:
    """One POST on a fresh connection; `context` None sends it in plain text."""
    host, port = address.rsplit(":", 1)
    connection: http.client.HTTPConnection
    if context is None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
    else:
        connection = http.client.HTTPSConnection(host, int(port), timeout=10, context=context)
    try:
        connection.request("POST", path, body, {"content-type": "application/json", **headers})
        response = connection.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as exc:  # ssl.SSLError is an OSError
        return PeerAnswer(error=f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()
    try:
        parsed = json.loads(data or b"{}")
    except ValueError:
        parsed = {"raw": data.decode(errors="replace")}
    return PeerAnswer(response.status, parsed if isinstance(parsed, dict) else {"raw": parsed})
