"""Edge certificates: a server certificate from the edge CA (`edge_ca.py`, never the mesh CA)
for the names clients dial a region's gateway at (its --host and --tls-name), made by the
control plane with a fresh key and handed to Envoy over SDS, like the gateway's peer
certificate, and kept in memory only.

Clients check it as any TLS server certificate (its DNS and IP SANs against the address they
dial, its chain against the edge CA they trust). It proves nothing to the mesh: no SPIFFE id,
server use only (no client authentication), and a CA that nothing of the mesh trusts, so it
opens no mesh port, no peer listener, and passes no check of a client of the control plane.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controlplane.pki.edge_ca import EdgeCA
from controlplane.pki.issue import _chain_pem, _sign
from meshline.certs import CertificateFacts, certificate_facts, renew_at
from meshline.edge_tls import edge_names
from meshline.wire import TRUST_DOMAIN

# A TLS server for clients, nothing else.
EDGE_USAGES = (ExtendedKeyUsageOID.SERVER_AUTH,)


@dataclass(frozen=True)
class EdgeCertificate:
    """A region's edge certificate (chain PEM) for `names`, its private key (PEM, never
    shown), when it was made and when it is due for a new one."""

    region: str
    names: tuple[str, ...]
    chain_pem: str
    key_pem: str = field(repr=False)
    facts: CertificateFacts
    issued_at: datetime
    renew_at: datetime


def issue_edge_certificate(
    edge_ca: EdgeCA, region: str, names: Sequence[str], now: datetime, lifetime: timedelta
) -> EdgeCertificate:
    """A new key and a server certificate of the edge CA for `region`'s gateway, for `names`
    (IP addresses and DNS names), valid for `lifetime` from `now`. ValueError naming a bad
    name, or when no name is left (an unspecified address names nothing)."""
    ca = edge_ca.signing
    sans_for = edge_names(names)
    if not sans_for:
        raise ValueError(f"region {region}: an edge certificate needs a name clients dial")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRUST_DOMAIN),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{region} gateway"),
        ]
    )
    sans: list[x509.GeneralName] = []
    for name in sans_for:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    certificate = _sign(ca, key.public_key(), subject, sans, now, lifetime, EDGE_USAGES)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    facts = certificate_facts(certificate)
    return EdgeCertificate(
        region=region,
        names=sans_for,
        chain_pem=_chain_pem(ca, certificate).decode(),
        key_pem=key_pem.decode(),
        facts=facts,
        issued_at=now,
        # From the moment it was made (its not-before is backdated for clock skew).
        renew_at=renew_at(now, facts.not_after),
    )
