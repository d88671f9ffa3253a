"""The edge CA: what signs the certificates gateways serve clients (edge TLS, mode mesh-ca).

A CA of its own, never the mesh CA, because an edge certificate names whatever hosts a region's
agent asks for: signed by the mesh CA, it would pass the hostname check of everything that
trusts the mesh CA (the CLI and agents dialling the control plane's API), and a region holding a
join token could pose as the control plane. Nothing that talks to the control plane or to the
mesh trusts the edge CA; clients of gateways do.

On disk in the state dir, beside the mesh CA: `edge-ca.key` (owner-only from the first byte)
and `edge-ca.crt` (public). A user-supplied edge CA keeps its key where the user keeps it and
only its trust bundle is copied to `edge-ca.crt`. The edge CA may share no certificate or key
with the mesh CA's trust bundle, nor be issued by one in it (checked at start).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from controlplane.pki.ca import (
    CAError,
    CAFiles,
    MeshCA,
    SigningCA,
    UserCAFiles,
    create_ca,
    load_ca,
    load_or_create_ca,
)
from meshline.certs import public_key_der
from meshline.edge_tls import EDGE_CA_CERT_FILE
from meshline.secret_file import write_public_file
from meshline.wire import TRUST_DOMAIN

log = logging.getLogger(__name__)

EDGE_CA_KEY_FILE = "edge-ca.key"
EDGE_CA_NAME = f"{TRUST_DOMAIN} edge CA"
EDGE_CA_FILES = CAFiles(
    EDGE_CA_KEY_FILE,
    EDGE_CA_CERT_FILE,
    "edge CA",
    f"clients of gateways with edge TLS must then trust the new {EDGE_CA_CERT_FILE}",
)


@dataclass(frozen=True)
class EdgeCA:
    """The CA that signs edge certificates (a type of its own, so the mesh CA is never passed
    where it is meant)."""

    signing: SigningCA


def create_edge_ca(now: datetime) -> EdgeCA:
    """A new edge CA in memory (for tests and a reconciler made without one)."""
    return EdgeCA(create_ca(now, EDGE_CA_NAME))


def open_edge_ca(state_dir: Path, user: UserCAFiles | None, mesh: MeshCA, now: datetime) -> EdgeCA:
    """The edge CA: the user's (checked; its trust bundle copied to `edge-ca.crt`), else the
    one in `state_dir`, made there on the first start. CAError naming the file when it cannot
    sign, or when the mesh trusts it (see `shared_trust_problem`)."""
    if user is not None:
        ca = load_ca(user.certificate, user.key, now, user_supplied=True)
        _refuse_shared_trust(mesh, ca, user.certificate)
        write_public_file(state_dir / EDGE_CA_CERT_FILE, ca.bundle_pem)
        log.info("edge CA: user-supplied %s, expires %s", user.certificate, ca.expires_at)
        return EdgeCA(ca)
    ca = load_or_create_ca(state_dir, now, EDGE_CA_FILES, EDGE_CA_NAME)
    _refuse_shared_trust(mesh, ca, state_dir / EDGE_CA_CERT_FILE)
    return EdgeCA(ca)


def _refuse_shared_trust(mesh: MeshCA, edge: SigningCA, where: Path) -> None:
    if problem := shared_trust_problem(mesh, edge):
        raise CAError(f"{where}: {problem}")


def shared_trust_problem(mesh: MeshCA, edge: SigningCA) -> str | None:
    """Why a certificate `edge` signs would be trusted by the mesh (None: it would not): a
    certificate of the edge CA's bundle has the key of one in the mesh CA's bundle, or was
    issued by one in it."""
    trusted = x509.load_pem_x509_certificates(mesh.bundle_pem)
    for ours in x509.load_pem_x509_certificates(edge.bundle_pem):
        for theirs in trusted:
            if public_key_der(ours.public_key()) == public_key_der(theirs.public_key()):
                return (
                    f"the edge CA's certificate '{ours.subject.rfc4514_string()}' has the key "
                    "of a CA the mesh trusts: give an edge CA of its own, or none (one is made "
                    "in the state dir)"
                )
            if _issued_by(ours, theirs):
                return (
                    f"the edge CA's certificate '{ours.subject.rfc4514_string()}' was issued "
                    f"by '{theirs.subject.rfc4514_string()}', which the mesh trusts: the mesh "
                    "would trust every edge certificate; give an edge CA that chains elsewhere"
                )
    return None


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
