"""`meshline audit`: the control plane's audit log, filtered (every change made, refused or
failed through the management API)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from enum import Enum
from typing import Annotated

import typer
from google.protobuf import json_format
from rich.table import Table

from cli.client.api import AddressOption, api_client, call, fail, resolve_address
from cli.console import console
from meshline.durations import DurationError, parse_duration
from meshline.times import parse_rfc3339, rfc3339_of_epoch
from meshline.v1 import api_pb2, resources_pb2


class AuditOutput(str, Enum):
    table = "table"
    json = "json"


_OUTCOME_COLORS = {"allowed": "green", "refused": "red", "failed": "yellow"}


def since_time(text: str, now: float) -> str:
    """RFC 3339 of `--since`: a duration back from `now` ("1h", "30m", "2d") or an RFC 3339
    time as it is; ValueError naming the text otherwise."""
    try:
        seconds = parse_duration(text)
    except DurationError:
        try:
            parse_rfc3339(text)
        except ValueError:
            raise ValueError(
                f"--since {text!r}: give a duration (1h, 30m, 2d) or an RFC 3339 time "
                "(2030-01-31T12:00:00Z)"
            ) from None
        return text
    return rfc3339_of_epoch(now - seconds)


def audit_table(events: Sequence[resources_pb2.AuditEvent]) -> Table:
    table = Table(
        "TIME", "PRINCIPAL", "VERB", "KIND", "NAME", "ENVIRONMENT", "OUTCOME", "DETAIL", box=None
    )
    for e in events:
        color = _OUTCOME_COLORS.get(e.outcome)
        outcome = e.outcome + (f" ({e.code})" if e.code else "")
        table.add_row(
            e.time,
            e.principal,
            e.verb,
            e.kind,
            e.name,
            e.environment or "-",
            f"[{color}]{outcome}[/{color}]" if color else outcome,
            e.detail,
        )
    return table


def audit(
    since: Annotated[
        str | None, typer.Option("--since", help="e.g. 1h, 30m, 2d, or an RFC 3339 time")
    ] = None,
    kind: Annotated[str, typer.Option("--kind", help="e.g. Deployment, ApiKey, Model")] = "",
    environment: Annotated[str, typer.Option("--environment", "-e")] = "",
    principal: Annotated[
        str, typer.Option("--principal", help="a key's name, jwt:<issuer>#<sub>, anonymous")
    ] = "",
    limit: Annotated[int, typer.Option("--limit", help="the newest N events (0 = 1000)")] = 0,
    output: Annotated[AuditOutput, typer.Option("--output", "-o")] = AuditOutput.table,
    address: AddressOption = None,
) -> None:
    """Show the audit log: who changed what, and what was refused."""
    request = api_pb2.ListAuditEventsRequest(
        kind=kind, environment=environment, principal=principal, limit=limit
    )
    if since:
        try:
            request.since = since_time(since, time.time())
        except ValueError as exc:
            raise fail(str(exc)) from None
    addr = resolve_address(address)
    with api_client(addr) as api:
        events = call(addr, lambda: api.audit.ListAuditEvents(request, timeout=30)).events
    if output is AuditOutput.json:
        body = [json_format.MessageToDict(e, preserving_proto_field_name=True) for e in events]
        for item, event in zip(body, events, strict=True):
            item["sequence"] = event.sequence  # a number, not proto JSON's quoted int64
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    console.print(audit_table(events))
