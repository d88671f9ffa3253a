"""JoinService: an agent trades a join token and a CSR for its region's certificate (Join), and
its valid certificate and a new CSR for a fresh one (Renew).

Join is answered on the API port (TLS, no client certificate yet): the token says which region
the caller may be, the control plane signs its key for that region and registers the region
from the token's facts unless an admin applied it. Renew is answered on the mesh port (mTLS):
the caller is whoever its verified client certificate names. Every refusal is logged at
WARNING with the caller's address, and never repeats a secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import grpc

from controlplane.api.errors import ApplyError
from controlplane.api.registration import register_region
from controlplane.pki import (
    REGION_CERT_LIFETIME,
    CSRError,
    IssuedCertificate,
    MeshCA,
    PeerNotARegionError,
    PeerUnauthenticatedError,
    issue_region_certificate,
    peer_region,
)
from controlplane.store import NotFoundError, Store
from controlplane.store.join_tokens import JoinTokenRefusedError, record_join, verify_join_token
from controlplane.store.keys import rfc3339
from controlplane.store.names import dns1123_label_problem
from controlplane.store.region_certificates import RegionCertificate, record_certificate
from meshline import join_token
from meshline.v1 import agent_pb2, agent_pb2_grpc

log = logging.getLogger(__name__)

# grpc ships no type stubs; the servicer context is typed loosely on purpose.
Context = Any


@dataclass(frozen=True)
class JoinSettings:
    """Where the mesh port is (told to every agent that joins) and how long certificates live."""

    mesh_address: str
    certificate_lifetime: timedelta = REGION_CERT_LIFETIME


@dataclass(frozen=True)
class JoinEvent:
    """One agent that joined (for the audit log): who, with which token, from where."""

    region: str
    token_id: str
    peer: str
    serial: str
    registered: bool  # the join created the region (no Region of its name was applied)


class _Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _issued_record(region: str, issued: IssuedCertificate, now: float) -> RegionCertificate:
    return RegionCertificate(region, issued.facts.serial, issued.facts.not_after.timestamp(), now)


class JoinServicer(agent_pb2_grpc.JoinServiceServicer):
    """Join and Renew over the store and the mesh CA. `clock`: epoch seconds; `on_join` hears
    every agent that joined (the audit hook)."""

    def __init__(
        self,
        store: Store,
        ca: MeshCA,
        settings: JoinSettings,
        clock: Callable[[], float] = time.time,
        on_join: Callable[[JoinEvent], None] | None = None,
    ) -> None:
        self._store = store
        self._ca = ca
        self._settings = settings
        self._clock = clock
        self._on_join = on_join

    async def Join(
        self, request: agent_pb2.JoinRequest, context: Context
    ) -> agent_pb2.JoinResponse:
        now = self._clock()
        peer = context.peer()
        try:
            issued, event = self._join(request, peer, now)
        except _Refused as exc:
            log.warning("join refused (region %r, from %s): %s", request.region, peer, exc)
            await _abort(context, exc)
        log.info(
            "region %s joined with join token %s from %s (certificate %s, expires %s%s)",
            event.region,
            event.token_id,
            peer,
            event.serial,
            issued.facts.not_after.isoformat(),
            ", region registered from the token" if event.registered else "",
        )
        if self._on_join is not None:
            self._on_join(event)
        return agent_pb2.JoinResponse(
            certificate_pem=issued.certificate_pem,
            ca_pem=self._ca.bundle_pem.decode(),
            mesh_address=self._settings.mesh_address,
            expires_at=rfc3339(issued.facts.not_after.timestamp()),
        )

    def _join(
        self, request: agent_pb2.JoinRequest, peer: str, now: float
    ) -> tuple[IssuedCertificate, JoinEvent]:
        """Check, sign, register, record: with no await in between, so nothing changes under
        it; every refusal comes before anything is stored."""
        region = request.region
        if problem := dns1123_label_problem(region):
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, f"region: {problem}")
        try:
            text = join_token.parse(request.join_token)
            token = verify_join_token(self._store, text.token_id, text.secret, now)
        except (join_token.JoinTokenFormatError, JoinTokenRefusedError) as exc:
            raise _Refused(grpc.StatusCode.UNAUTHENTICATED, str(exc)) from None
        if token.region != region:
            raise _Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"join token {token.token_id} is for region '{token.region}', not '{region}'",
            )
        issued = self._issue(request.csr_pem, region, now)
        try:
            registered = register_region(self._store, region, token.facts)
        except ApplyError as exc:  # rules changed since the token was made
            raise _Refused(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"join token {token.token_id}: its region facts are no longer valid "
                f"(create a new token): {exc}",
            ) from None
        try:
            record_join(
                self._store,
                token.token_id,
                text.secret,
                _issued_record(region, issued, now),
                now,
            )
        except JoinTokenRefusedError as exc:  # revoked this very moment
            raise _Refused(grpc.StatusCode.UNAUTHENTICATED, str(exc)) from None
        return issued, JoinEvent(region, token.token_id, peer, issued.facts.serial, registered)

    async def Renew(
        self, request: agent_pb2.RenewRequest, context: Context
    ) -> agent_pb2.RenewResponse:
        now = self._clock()
        peer = context.peer()
        try:
            region, serial, issued = self._renew(request, context.auth_context(), now)
        except _Refused as exc:
            log.warning("certificate renewal refused (from %s): %s", peer, exc)
            await _abort(context, exc)
        log.info(
            "region %s renewed its certificate from %s (%s -> %s, expires %s)",
            region,
            peer,
            serial,
            issued.facts.serial,
            issued.facts.not_after.isoformat(),
        )
        return agent_pb2.RenewResponse(
            certificate_pem=issued.certificate_pem,
            ca_pem=self._ca.bundle_pem.decode(),
            expires_at=rfc3339(issued.facts.not_after.timestamp()),
        )

    def _renew(
        self, request: agent_pb2.RenewRequest, auth_context: Any, now: float
    ) -> tuple[str, str, IssuedCertificate]:
        try:
            region, facts = peer_region(auth_context, self._ca, _utc(now))
        except PeerUnauthenticatedError as exc:
            raise _Refused(grpc.StatusCode.UNAUTHENTICATED, str(exc)) from None
        except PeerNotARegionError as exc:
            raise _Refused(grpc.StatusCode.PERMISSION_DENIED, str(exc)) from None
        try:
            self._store.get_region(region)
        except NotFoundError:
            raise _Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"region '{region}' was deleted: its agent must join again with a join token",
            ) from None
        issued = self._issue(request.csr_pem, region, now)
        record_certificate(self._store, _issued_record(region, issued, now))
        return region, facts.serial, issued

    def _issue(self, csr_pem: str, region: str, now: float) -> IssuedCertificate:
        try:
            return issue_region_certificate(
                self._ca, csr_pem, region, _utc(now), self._settings.certificate_lifetime
            )
        except CSRError as exc:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


async def _abort(context: Context, refused: _Refused) -> NoReturn:
    await context.abort(refused.code, str(refused))
    raise AssertionError("abort returned")
