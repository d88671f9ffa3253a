"""Who calls on the mesh port, and whether they may act as the region they name.

The mesh port asks every caller for a client certificate of the mesh CA (the TLS handshake
refuses anyone else); `MeshPeers` reads that certificate again, checks it against the CA and
the clock (controlplane.pki.peer_region), and answers with the region it was issued to. An
agent's hello and an Envoy's node id must name that same region: a certificate of region A
never opens region B's agent stream or fetches B's configuration. Every refusal is logged
with the caller's address and what it claimed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import grpc

from controlplane.pki import MeshCA, PeerNotARegionError, PeerUnauthenticatedError, peer_region

log = logging.getLogger(__name__)

Context = Any  # grpc ships no type stubs for the servicer context


@dataclass(frozen=True)
class PeerRefusal:
    code: grpc.StatusCode
    message: str


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


class MeshPeers:
    """Reads the region of a mesh-port caller from its verified client certificate."""

    def __init__(self, ca: MeshCA, clock: Callable[[], datetime] | None = None) -> None:
        self._ca = ca
        self._clock = clock or (lambda: datetime.now(UTC))

    def identify(self, context: Context) -> str | PeerRefusal:
        """The caller's region, or why it has none."""
        try:
            region, _ = peer_region(context.auth_context(), self._ca, self._clock())
        except PeerUnauthenticatedError as exc:
            return PeerRefusal(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        except PeerNotARegionError as exc:
            return PeerRefusal(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        return region

    async def region_of(self, context: Context, what: str) -> str:
        """The caller's region; the call is refused (and logged) when it has none."""
        found = self.identify(context)
        if isinstance(found, PeerRefusal):
            await refuse(context, found, what)
        return found

    async def require(self, context: Context, claimed: str, what: str) -> str:
        """The caller's region, which must be `claimed`; refused (and logged) otherwise."""
        region = await self.region_of(context, what)
        if problem := claim_problem(region, claimed, what):
            await refuse(context, problem, what)
        return region


async def refuse(context: Context, refusal: PeerRefusal, what: str) -> NoReturn:
    log.warning("mesh port: %s refused (from %s): %s", what, context.peer(), refusal.message)
    await context.abort(refusal.code, refusal.message)
    raise AssertionError("abort returned")
