"""AuditService and IdentityService: the audit log read back, and the caller told who it is.

Both read the caller from the guard (guard.current_principal): the audit log shows a scoped
caller only the events of its environments and of the kinds every environment shares.
"""

from __future__ import annotations

from typing import Any

import grpc

from controlplane.api.authz import ALL_ENVIRONMENTS, CATALOG_KINDS, KIND_REGION, Principal
from controlplane.api.guard import current_principal
from controlplane.store import Store
from controlplane.store.audit import (
    MAX_LIMIT,
    AuditEvent,
    AuditQuery,
    AuditScope,
    list_events,
)
from controlplane.store.keys import rfc3339
from meshline.times import parse_rfc3339, rfc3339_of_epoch
from meshline.v1 import api_pb2 as api
from meshline.v1 import api_pb2_grpc, resources_pb2

Context = Any  # grpc ships no type stubs for the servicer context

# Events of these kinds are shown to anyone with a role: every environment shares them.
SHARED_EVENT_KINDS: tuple[str, ...] = (*CATALOG_KINDS, KIND_REGION)


def audit_scope(principal: Principal) -> AuditScope | None:
    """What of the log `principal` may read: None = all of it (a role in every environment)."""
    if principal.role_in(ALL_ENVIRONMENTS) is not None:
        return None
    environments = tuple(sorted({g.environment for g in principal.grants}))
    return AuditScope(environments, SHARED_EVENT_KINDS)


def to_message(event: AuditEvent) -> resources_pb2.AuditEvent:
    r = event.record
    return resources_pb2.AuditEvent(
        sequence=event.sequence,
        time=rfc3339_of_epoch(r.time, "milliseconds"),
        principal=r.principal,
        verb=r.verb,
        kind=r.kind,
        name=r.name,
        environment=r.environment,
        outcome=r.outcome,
        code=r.code,
        detail=r.detail,
        method=r.method,
    )


class AuditServicer(api_pb2_grpc.AuditServiceServicer):
    def __init__(self, store: Store) -> None:
        self._store = store

    async def ListAuditEvents(
        self, request: api.ListAuditEventsRequest, context: Context
    ) -> api.ListAuditEventsResponse:
        since = None
        if request.since:
            try:
                since = parse_rfc3339(request.since)
            except ValueError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"since: {exc}")
        if request.limit < 0 or request.limit > MAX_LIMIT:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"limit: must be 0 (the default, 1000) to {MAX_LIMIT}, not {request.limit}",
            )
        if request.after_sequence < 0:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"after_sequence: must be 0 or more, not {request.after_sequence}",
            )
        query = AuditQuery(
            since=since,
            kind=request.kind,
            environment=request.environment,
            principal=request.principal,
            after_sequence=request.after_sequence,
            limit=request.limit or 1000,
            scope=audit_scope(current_principal()),
        )
        events = list_events(self._store, query)
        return api.ListAuditEventsResponse(events=[to_message(e) for e in events])


class IdentityServicer(api_pb2_grpc.IdentityServiceServicer):
    async def WhoAmI(self, request: api.WhoAmIRequest, context: Context) -> api.WhoAmIResponse:
        principal = current_principal()
        return api.WhoAmIResponse(
            principal=principal.name,
            kind=principal.kind.value,
            grants=[
                api.RoleGrant(role=g.role.value, environment=g.environment)
                for g in principal.grants
            ],
            expires_at=rfc3339(principal.expires_at) if principal.expires_at is not None else "",
        )
