"""JoinService: an agent trades a join token and a CSR for its region's certificate (Join), and
its certificate of record and a new CSR for a fresh one (Renew).

Join is answered on the API port (TLS, no client certificate yet): the token says which region
the caller may be. While the region's agent is connected (a live stream, opened with the
region's certificate of record) a Join is refused: a second agent never takes a live region's
identity. Otherwise the control plane signs the caller's key for that region, makes it the
region's certificate of record (whatever an earlier agent held opens nothing new, and its open
streams are ended) and registers the region from the token's facts unless an admin applied it.
Renew is answered on the mesh port (mTLS): the caller is whoever its verified client
certificate names, and that certificate must be the region's certificate of record (or the one
the last renewal replaced, for a short overlap). Every refusal is logged at WARNING with the
caller's address, and never repeats a secret.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import grpc

from controlplane.agents.peers import PeerRefusal, identify_peer, record_problem
from controlplane.agents.registry import AgentRegistry, AgentSession
from controlplane.api.errors import ApplyError
from controlplane.api.registration import normalized_region_spec, region_problems
from controlplane.pki import (
    REGION_CERT_LIFETIME,
    CSRError,
    IssuedCertificate,
    MeshCA,
    issue_region_certificate,
)
from controlplane.store import NotFoundError, Store
from controlplane.store.join_tokens import JoinTokenRefusedError, record_join, verify_join_token
from controlplane.store.keys import rfc3339
from controlplane.store.names import dns1123_label_problem
from controlplane.store.region_certificates import (
    CertificateNotOfRecordError,
    RegionCertificate,
    certificate_of_record,
    renew_certificate,
)
from meshline import join_token
from meshline.v1 import agent_pb2, agent_pb2_grpc

log = logging.getLogger(__name__)

# grpc ships no type stubs; the servicer context is typed loosely on purpose.
Context = Any


# How long the certificate a renewal replaced still opens the mesh port: the agent may not have
# the new one yet (the reply lost on the way: it asks again with the old one), and its Envoy
# may reconnect before it read the new file. Never past the old certificate's own end.
RENEWAL_OVERLAP = timedelta(seconds=60)


@dataclass(frozen=True)
class JoinSettings:
    """Where the mesh port is (told to every agent that joins), how long certificates live,
    and how long a renewed one keeps working."""

    mesh_address: str
    certificate_lifetime: timedelta = REGION_CERT_LIFETIME
    renewal_overlap: timedelta = RENEWAL_OVERLAP


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


def connected_agent(
    session: AgentSession | None, record: RegionCertificate | None, now: float
) -> AgentSession | None:
    """The agent that holds the region now: a live stream whose certificate (the one that
    opened it, or what its renewals got) is still the region's certificate of record. A stream
    whose certificate expired or was replaced holds nothing: its agent may join again."""
    if session is None or record is None or not record.accepts(session.serial, now):
        return None
    return session


class JoinServicer(agent_pb2_grpc.JoinServiceServicer):
    """Join and Renew over the store, the mesh CA and the connected agents. `clock`: epoch
    seconds; `on_join` hears every agent that joined (the audit hook); `on_replaced(region,
    serial)` hears that a Join made `serial` the region's only certificate (to end the streams
    opened with any other)."""

    def __init__(
        self,
        store: Store,
        ca: MeshCA,
        settings: JoinSettings,
        agents: AgentRegistry,
        clock: Callable[[], float] = time.time,
        on_join: Callable[[JoinEvent], None] | None = None,
        on_replaced: Callable[[str, str], None] | None = None,
    ) -> None:
        self._store = store
        self._ca = ca
        self._settings = settings
        self._agents = agents
        self._clock = clock
        self._on_join = on_join
        self._on_replaced = on_replaced

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
        self._end_earlier_streams(event.region, event.serial)
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
        """Check, sign, then store it all in one transaction: with no await in between, so
        nothing changes under it; every refusal comes before anything is stored, and a
        failure while storing leaves nothing (no region registered, no use counted)."""
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
        if errors := region_problems(region, token.facts):  # rules changed since it was made
            problems = ApplyError(errors)
            raise _Refused(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"join token {token.token_id}: its region facts are no longer valid "
                f"(create a new token): {problems}",
            )
        record = certificate_of_record(self._store, region)
        if holder := connected_agent(self._agents.live_session(region), record, now):
            raise _Refused(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"region '{region}' already has a connected agent ({holder.hello.agent_id}, "
                f"gateway {holder.hello.gateway_address}, certificate {holder.serial}): a "
                "second agent is refused; stop that one first, or join as another region",
            )
        issued = self._issue(request.csr_pem, region, now)
        try:
            recorded = record_join(
                self._store,
                token.token_id,
                text.secret,
                _issued_record(region, issued, now),
                now,
                normalized_region_spec(token.facts),
            )
        except JoinTokenRefusedError as exc:  # revoked this very moment
            raise _Refused(grpc.StatusCode.UNAUTHENTICATED, str(exc)) from None
        except sqlite3.Error as exc:  # the store failed: its transaction kept nothing
            log.error("cannot store the join of region %s: %s", region, exc)
            raise _Refused(
                grpc.StatusCode.UNAVAILABLE,
                f"the join of region '{region}' could not be stored (nothing was kept; try "
                f"again): {exc}",
            ) from None
        event = JoinEvent(region, token.token_id, peer, issued.facts.serial, recorded.registered)
        return issued, event

    def _end_earlier_streams(self, region: str, serial: str) -> None:
        """The region's identity changed hands: streams opened with an earlier certificate
        end (the agent that joined reconnects with its new one)."""
        why = f"region '{region}' joined again (certificate {serial}): reconnect with it"
        if self._agents.evict(region, why) is not None:
            log.info("ended the agent stream of region %s: it joined again", region)
        if self._on_replaced is not None:
            self._on_replaced(region, serial)

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
        found = identify_peer(auth_context, self._ca, _utc(now))
        if isinstance(found, PeerRefusal):
            raise _Refused(found.code, found.message)
        region, facts = found.region, found.facts
        try:
            self._store.get_region(region)
        except NotFoundError:
            raise _Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"region '{region}' was deleted: its agent must join again with a join token",
            ) from None
        before = certificate_of_record(self._store, region)
        if refusal := record_problem(region, facts.serial, before, now):
            raise _Refused(refusal.code, refusal.message)  # before signing anything
        issued = self._issue(request.csr_pem, region, now)
        try:
            renew_certificate(
                self._store,
                facts.serial,
                facts.not_after.timestamp(),
                _issued_record(region, issued, now),
                self._settings.renewal_overlap.total_seconds(),
            )
        except CertificateNotOfRecordError as exc:  # another renewal won meanwhile
            raise _Refused(grpc.StatusCode.UNAUTHENTICATED, str(exc)) from None
        renewed = (facts.serial, before.serial if before is not None else facts.serial)
        self._agents.follow_renewal(region, renewed, issued.facts.serial)
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
