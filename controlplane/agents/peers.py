"""Who calls on the mesh port, and whether they may act as the region they name.

The mesh port asks every caller for a client certificate of the mesh CA (the TLS handshake
refuses anyone else); `MeshPeers` reads that certificate again, checks it against the CA and
the clock (controlplane.pki.peer_region), and answers with the region it was issued to. An
agent's hello and an Envoy's node id must name that same region: a certificate of region A
never opens region B's agent stream or fetches B's configuration. And the certificate must be
the region's certificate of record (controlplane.store.region_certificates): one the CA issued
to the region earlier (a previous join's, or one renewed since) opens nothing new. Every
refusal is logged with the caller's address and what it claimed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import grpc

from controlplane.pki import (
    CertificateFacts,
    MeshCA,
    PeerNotARegionError,
    PeerUnauthenticatedError,
    peer_region,
)
from controlplane.pki.peer import AuthContext
from controlplane.store import Store
from controlplane.store.region_certificates import (
    RegionCertificate,
    certificate_of_record,
    no_record_refusal,
)

log = logging.getLogger(__name__)

Context = Any  # grpc ships no type stubs for the servicer context


@dataclass(frozen=True)
class PeerRefusal:
    code: grpc.StatusCode
    message: str


@dataclass(frozen=True)
class MeshPeer:
    """A caller whose certificate the mesh CA issued to `region` (valid now)."""

    region: str
    facts: CertificateFacts

    @property
    def serial(self) -> str:
        return self.facts.serial


def identify_peer(auth_context: AuthContext, ca: MeshCA, now: datetime) -> MeshPeer | PeerRefusal:
    """The region and certificate of a mesh-port caller, or why it has none: no certificate of
    the mesh CA valid at `now` is UNAUTHENTICATED; the mesh's certificate of something other
    than a region (the control plane's own) is PERMISSION_DENIED."""
    try:
        region, facts = peer_region(auth_context, ca, now)
    except PeerUnauthenticatedError as exc:
        return PeerRefusal(grpc.StatusCode.UNAUTHENTICATED, str(exc))
    except PeerNotARegionError as exc:
        return PeerRefusal(grpc.StatusCode.PERMISSION_DENIED, str(exc))
    return MeshPeer(region, facts)


def claim_problem(peer: str, claimed: str, what: str) -> PeerRefusal | None:
    """Why a caller holding region `peer`'s certificate may not act as region `claimed` (None:
    it may). `what`: what it tried, e.g. "open the agent stream"."""
    if not claimed:
        return PeerRefusal(grpc.StatusCode.INVALID_ARGUMENT, f"{what}: no region named")
    if claimed != peer:
        return PeerRefusal(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{what} as region '{claimed}' refused: the client certificate is region '{peer}'s",
        )
    return None


def record_problem(
    region: str, serial: str, record: RegionCertificate | None, now: float
) -> PeerRefusal | None:
    """Why certificate `serial` of `region` may not act as the region, given the region's
    certificate of record (None: it may). No record: the region never joined or was deleted;
    another serial: replaced by a renewal (past the overlap) or by a new join."""
    if record is None:
        return PeerRefusal(grpc.StatusCode.PERMISSION_DENIED, no_record_refusal(region))
    if problem := record.refusal(serial, now):
        return PeerRefusal(grpc.StatusCode.UNAUTHENTICATED, problem)
    return None


class MeshPeers:
    """Reads the region of a mesh-port caller from its verified client certificate, and
    checks it against the region's certificate of record in the store."""

    def __init__(
        self, ca: MeshCA, store: Store, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._ca = ca
        self._store = store
        self._clock = clock or (lambda: datetime.now(UTC))

    def identify(self, context: Context) -> MeshPeer | PeerRefusal:
        """The caller's region and certificate, or why it has none (the record unread)."""
        return identify_peer(context.auth_context(), self._ca, self._clock())

    def of_record(self, peer: MeshPeer) -> PeerRefusal | None:
        """Why the caller's certificate is not its region's certificate of record (None: it
        is, or is the one a renewal replaced, within the overlap)."""
        record = certificate_of_record(self._store, peer.region)
        return record_problem(peer.region, peer.serial, record, self._clock().timestamp())

    async def authenticated(self, context: Context, what: str) -> MeshPeer:
        """The caller's region from its certificate alone (checked against the record by
        `authorize`); the call is refused (and logged) when it has none."""
        found = self.identify(context)
        if isinstance(found, PeerRefusal):
            await refuse(context, found, what)
        return found

    async def authorize(self, context: Context, peer: MeshPeer, claimed: str, what: str) -> None:
        """The caller may act as `claimed`: its certificate is that region's, and the
        region's certificate of record; refused (and logged) otherwise."""
        if problem := claim_problem(peer.region, claimed, what) or self.of_record(peer):
            await refuse(context, problem, what)

    async def region_of(self, context: Context, what: str) -> MeshPeer:
        """The caller, holding its region's certificate of record; refused (and logged)
        otherwise."""
        peer = await self.authenticated(context, what)
        await self.authorize(context, peer, peer.region, what)
        return peer

    async def require(self, context: Context, claimed: str, what: str) -> MeshPeer:
        """The caller, which must act as `claimed` only; refused (and logged) otherwise."""
        peer = await self.authenticated(context, what)
        await self.authorize(context, peer, claimed, what)
        return peer


async def refuse(context: Context, refusal: PeerRefusal, what: str) -> NoReturn:
    log.warning("mesh port: %s refused (from %s): %s", what, context.peer(), refusal.message)
    await context.abort(refusal.code, refusal.message)
    raise AssertionError("abort returned")
