"""A join goes into the management audit log, beside the token that allowed it."""

from __future__ import annotations

from controlplane.agents.join import JoinEvent
from controlplane.store.audit import ALLOWED, AuditRecord

JOIN_METHOD = "/meshline.v1.JoinService/Join"


def join_record(event: JoinEvent, now: float) -> AuditRecord:
    """The audit record of one agent that joined: the token (its public id) is the principal,
    the region is what changed; never the secret."""
    registered = ", region registered from the token's facts" if event.registered else ""
    return AuditRecord(
        time=now,
        principal=f"jointoken:{event.token_id}",
        verb="join",
        kind="Region",
        name=event.region,
        environment="",
        outcome=ALLOWED,
        code="",
        detail=f"certificate {event.serial} issued to {event.peer}{registered}",
        method=JOIN_METHOD,
    )
