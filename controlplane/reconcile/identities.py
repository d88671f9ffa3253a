"""Each region's gateway certificate for the peer path (from the mesh CA), and the edge
certificate of those whose agent asked for TLS from the control plane (from the edge CA, never
the mesh CA): made by the control plane, kept in memory only, made again two thirds into their
lifetime (an edge certificate also when its names change).

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
from typing import Protocol

from controlplane.ir.model import EdgeTls, GatewayTls
from controlplane.pki.ca import MeshCA
from controlplane.pki.edge import EdgeCertificate, issue_edge_certificate
from controlplane.pki.edge_ca import EdgeCA, create_edge_ca, shared_trust_problem
from controlplane.pki.gateway import GatewayCertificate, issue_gateway_certificate
from meshline.edge_tls import EdgeTlsMode, edge_names, edge_tls_mode
from meshline.v1 import agent_pb2

log = logging.getLogger(__name__)

DEFAULT_LIFETIME = timedelta(hours=24)


def due(
    current: Mapping[str, GatewayCertificate], regions: Iterable[str], now: datetime
) -> list[str]:
    """The regions (sorted) that need a new certificate: none yet, or past its renewal time."""
    return sorted(r for r in set(regions) if r not in current or current[r].renew_at <= now)


class Renewable(Protocol):
    @property
    def renew_at(self) -> datetime: ...


def next_renewal_s(current: Mapping[str, Renewable], now: datetime) -> float | None:
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


def edge_wanted(hellos: Mapping[str, agent_pb2.EdgeTls]) -> dict[str, tuple[str, ...]]:
    """Region -> the names its edge certificate is for, of the regions whose agent asked for
    TLS from the control plane (mode mesh-ca)."""
    return {
        region: tuple(hello.names)
        for region, hello in hellos.items()
        if hello.mode == EdgeTlsMode.MESH_CA.value
    }


def edge_due(
    current: Mapping[str, EdgeCertificate], wanted: Mapping[str, tuple[str, ...]], now: datetime
) -> list[str]:
    """The regions (sorted) that need a new edge certificate: none yet, other names asked for
    (an agent restarted with another --tls-name), or past its renewal time."""
    return sorted(
        region
        for region, asked in wanted.items()
        if region not in current
        or current[region].names != _normalized(asked)
        or current[region].renew_at <= now
    )


def _normalized(asked: tuple[str, ...]) -> tuple[str, ...] | None:
    """`asked` as a certificate names them; None when one cannot be named (never equal)."""
    try:
        return edge_names(asked)
    except ValueError:
        return None


def edge_tls_of(
    hellos: Mapping[str, agent_pb2.EdgeTls], certificates: Mapping[str, GatewayTls]
) -> dict[str, EdgeTls]:
    """Each region's edge TLS as its agent asked (regions that did not: none). A region that
    asked for a certificate of the edge CA but has none (its issuing failed) is left plain
    until it has one; an unknown mode is left out (the hello check refuses it)."""
    out: dict[str, EdgeTls] = {}
    for region, hello in sorted(hellos.items()):
        try:
            mode = edge_tls_mode(hello.mode)
        except ValueError:
            continue
        if mode is EdgeTlsMode.FILES and hello.sds_path.startswith("/"):
            out[region] = EdgeTls(mode, sds_path=hello.sds_path)
        elif mode is EdgeTlsMode.MESH_CA and region in certificates:
            out[region] = EdgeTls(mode, certificate=certificates[region])
    return out


def edge_certificate_tls(certificate: EdgeCertificate) -> GatewayTls:
    """The IR's view of an edge certificate (no CA bundle: clients bring their own trust)."""
    return GatewayTls(
        certificate_chain=certificate.chain_pem,
        private_key=certificate.key_pem,
        serial=certificate.facts.serial,
        expires_at=certificate.facts.not_after.timestamp(),
    )


class GatewayIdentities:
    """The current gateway certificate (mesh CA) of every region that has needed one, and the
    edge certificate (edge CA) of every region whose agent asks for one."""

    def __init__(
        self,
        ca: MeshCA,
        lifetime: timedelta = DEFAULT_LIFETIME,
        edge_ca: EdgeCA | None = None,
    ) -> None:
        """`edge_ca`: None makes one in memory (a reconciler built without one, in tests)."""
        if lifetime <= timedelta(0):
            raise ValueError(f"a gateway certificate's lifetime must be positive, not {lifetime}")
        edge_ca = edge_ca or create_edge_ca(ca.certificate.not_valid_before_utc)
        if problem := shared_trust_problem(ca, edge_ca.signing):
            raise ValueError(problem)
        self._ca = ca
        self._edge_ca = edge_ca
        self._lifetime = lifetime
        self._current: dict[str, GatewayCertificate] = {}
        self._edge: dict[str, EdgeCertificate] = {}

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

    def edge_tls(
        self, hellos: Mapping[str, agent_pb2.EdgeTls], now: datetime
    ) -> dict[str, EdgeTls]:
        """Each region's edge TLS as its agent's hello asks, issuing the edge certificates that
        are due (from the edge CA, for the names in the hello). A failed issuing keeps the
        certificate the region had (logged; the next rebuild tries again). Regions that no
        longer ask are forgotten."""
        wanted = edge_wanted(hellos)
        self._edge = {r: c for r, c in self._edge.items() if r in wanted}
        for region in edge_due(self._edge, wanted, now):
            try:
                issued = issue_edge_certificate(
                    self._edge_ca, region, wanted[region], now, self._lifetime
                )
            except Exception:
                log.exception("cannot issue region %s's edge certificate", region)
                continue
            log.info(
                "region %s: edge certificate serial %s for %s, expires %s",
                region,
                issued.facts.serial,
                ", ".join(issued.names),
                issued.facts.not_after.isoformat(),
            )
            self._edge[region] = issued
        certificates = {r: edge_certificate_tls(c) for r, c in self._edge.items()}
        return edge_tls_of(hellos, certificates)

    def next_renewal_s(self, now: datetime) -> float | None:
        """Seconds until the next peer or edge certificate is due (None: none held)."""
        due_in = [
            s
            for s in (next_renewal_s(self._current, now), next_renewal_s(self._edge, now))
            if s is not None
        ]
        return min(due_in) if due_in else None
