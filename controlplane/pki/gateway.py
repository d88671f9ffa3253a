"""Gateway certificates: a fresh key and certificate for a region's Envoy, made by the control
plane, which hands both to Envoy over SDS and keeps them in memory only.

The identity is the region's (URI SAN `spiffe://meshline/region/<name>`, as for its agent): the
peer path checks "a gateway of region X", and a region's agent and Envoy run on the same host
with the same trust. A new key comes with every certificate, so a rotation also retires the
old key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controlplane.pki.ca import MeshCA
from controlplane.pki.issue import issue_region_certificate
from meshline.certs import CertificateFacts, new_key_and_csr, renew_at


@dataclass(frozen=True)
class GatewayCertificate:
    """A region's gateway certificate (chain PEM), its private key (PEM, never shown), when it
    was issued and when it is due for a new one."""

    region: str
    chain_pem: str
    key_pem: str = field(repr=False)
    facts: CertificateFacts
    issued_at: datetime
    renew_at: datetime


def issue_gateway_certificate(
    ca: MeshCA, region: str, now: datetime, lifetime: timedelta
) -> GatewayCertificate:
    """A new key and a certificate for `region`'s gateway, valid for `lifetime` from `now` (its
    not-before leaves room for clock skew; renewal is two thirds into the time from now)."""
    pair = new_key_and_csr(f"{region} gateway")
    issued = issue_region_certificate(ca, pair.csr_pem, region, now, lifetime)
    return GatewayCertificate(
        region=region,
        chain_pem=issued.certificate_pem,
        key_pem=pair.key_pem.decode(),
        facts=issued.facts,
        issued_at=now,
        # From the moment it was made, not from its not-before (set minutes earlier for clock
        # skew): a lifetime of seconds must still renew before it ends.
        renew_at=renew_at(now, issued.facts.not_after),
    )
