"""Who is calling on the mesh port: the region named by the caller's client certificate.

grpc (`context.auth_context()`) hands over the certificate the TLS handshake verified; this
module reads it again and checks it against the mesh CA, so a port wired without client
authentication never lends anyone a region's identity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from controlplane.pki.ca import MeshCA
from meshline.certs import CertificateFacts, certificate_facts

# The auth context key under which grpc puts the peer's certificate (PEM).
PEER_CERT_KEY = "x509_pem_cert"

AuthContext = Mapping[str, Sequence[bytes]]


class PeerUnauthenticatedError(Exception):
    """The caller showed no certificate of the mesh CA that is valid now (UNAUTHENTICATED)."""


class PeerNotARegionError(Exception):
    """The caller's certificate is the mesh's but names no region (PERMISSION_DENIED)."""


def peer_certificate(auth_context: AuthContext) -> x509.Certificate | None:
    """The client certificate of the call, or None when it showed none."""
    values = auth_context.get(PEER_CERT_KEY) or ()
    if not values:
        return None
    try:
        return x509.load_pem_x509_certificate(values[0])
    except ValueError:
        return None


def verified_peer(auth_context: AuthContext, ca: MeshCA, now: datetime) -> CertificateFacts:
    """The facts of the caller's certificate, once it is known to be the mesh CA's and valid
    at `now`; PeerUnauthenticatedError otherwise."""
    certificate = peer_certificate(auth_context)
    if certificate is None:
        raise PeerUnauthenticatedError(
            "no client certificate: call the mesh port with the region's certificate (mTLS)"
        )
    try:
        certificate.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature):
        raise PeerUnauthenticatedError(
            "the client certificate was not issued by this mesh's CA"
        ) from None
    facts = certificate_facts(certificate)
    if not facts.not_before <= now < facts.not_after:
        raise PeerUnauthenticatedError(
            f"the client certificate (serial {facts.serial}) is valid from "
            f"{facts.not_before.isoformat()} to {facts.not_after.isoformat()}, not now"
        )
    return facts


def peer_region(
    auth_context: AuthContext, ca: MeshCA, now: datetime
) -> tuple[str, CertificateFacts]:
    """The region the caller's verified certificate was issued to, with its facts;
    PeerUnauthenticatedError or PeerNotARegionError otherwise."""
    facts = verified_peer(auth_context, ca, now)
    region = facts.region
    if region is None:
        who = facts.spiffe_id or "no SPIFFE id"
        raise PeerNotARegionError(f"the client certificate names {who}, not a region")
    return region, facts
