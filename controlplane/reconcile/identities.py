"""Each region's gateway certificate for the peer path: made by the control plane, kept in
memory only, made again two thirds into its lifetime.

`due` and `next_renewal_s` are the pure decisions (table-tested); `GatewayIdentities` is the
shell that holds the CA and the current certificates and issues what is due. The reconciler
asks it for every gateway at every rebuild and wakes up for the next renewal, so a rotation
reaches Envoy as an SDS update of the same secret: no listener or cluster changes, no restart,
and connections already open keep going. A control-plane restart makes new certificates for
every region (the old ones were only in memory); they chain to the same CA, so a peer still
holding the old one keeps talking to one that has the new one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from controlplane.ir.model import GatewayTls
from controlplane.pki.ca import MeshCA
from controlplane.pki.gateway import GatewayCertificate, issue_gateway_certificate

log = logging.getLogger(__name__)

DEFAULT_LIFETIME = timedelta(hours=24)


def due(
    current: Mapping[str, GatewayCertificate], regions: Iterable[str], now: datetime
) -> list[str]:
    """The regions (sorted) that need a new certificate: none yet, or past its renewal time."""
    return sorted(r for r in set(regions) if r not in current or current[r].renew_at <= now)


def next_renewal_s(current: Mapping[str, GatewayCertificate], now: datetime) -> float | None:
    """Seconds until the next certificate is due; None when none is held. A renewal already
    past (it failed) counts as due in a second, not at once: never a busy loop."""
    if not current:
        return None
    soonest = min(c.renew_at for c in current.values())
    return max((soonest - now).total_seconds(), 1.0)


def gateway_tls(certificate: GatewayCertificate, trusted_ca: str) -> GatewayTls:
    """The IR's view of a certificate: what Envoy gets, and what status shows of it."""
    return GatewayTls(
        certificate_chain=certificate.chain_pem,
        private_key=certificate.key_pem,
        trusted_ca=trusted_ca,
        serial=certificate.facts.serial,
        expires_at=certificate.facts.not_after.timestamp(),
    )


class GatewayIdentities:
    """The current gateway certificate of every region that has needed one."""

    def __init__(self, ca: MeshCA, lifetime: timedelta = DEFAULT_LIFETIME) -> None:
        if lifetime <= timedelta(0):
            raise ValueError(f"a gateway certificate's lifetime must be positive, not {lifetime}")
        self._ca = ca
        self._lifetime = lifetime
        self._current: dict[str, GatewayCertificate] = {}

    @property
    def lifetime(self) -> timedelta:
        return self._lifetime

    def tls(self, regions: Iterable[str], now: datetime) -> dict[str, GatewayTls]:
        """Each region's certificate, issuing those that are due. A region whose issuing fails
        keeps the certificate it had (the failure is logged; the next rebuild tries again).
        Regions not asked for are forgotten: one that comes back gets a new certificate."""
        wanted = set(regions)
        self._current = {r: c for r, c in self._current.items() if r in wanted}
        for region in due(self._current, wanted, now):
            try:
                issued = issue_gateway_certificate(self._ca, region, now, self._lifetime)
            except Exception:
                log.exception("cannot issue region %s's gateway certificate", region)
                continue
            log.info(
                "region %s: gateway certificate serial %s, expires %s",
                region,
                issued.facts.serial,
                issued.facts.not_after.isoformat(),
            )
            self._current[region] = issued
        trusted = self._ca.bundle_pem.decode()
        return {r: gateway_tls(c, trusted) for r, c in self._current.items()}

    def next_renewal_s(self, now: datetime) -> float | None:
        return next_renewal_s(self._current, now)
