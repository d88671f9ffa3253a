"""The audit log: every change made, refused or failed through the management API.

Kept in the store's database (table `audit_events`, migration 6), so it survives restarts and
moves with the state dir. Appending is no configuration change: no revision bump, nothing on
the change feed. The log is bounded twice (docs/security.md says so): refusals of callers
without a valid credential (outcome refused, code UNAUTHENTICATED) are kept under a bound of
their own, `MAX_UNAUTHENTICATED`, and every other event under `MAX_EVENTS`; past either, the
oldest of that class go first. So nobody can fill the disk, and a caller with no credential at
all, however many calls it makes, never pushes a real change out of the log.

Times are epoch seconds chosen by the caller; nothing here reads a clock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from controlplane.store.store import Store

# The most events kept besides unauthenticated refusals; appending past it deletes the oldest.
MAX_EVENTS = 100_000
# The most unauthenticated refusals kept (their own bound: they never evict other events).
MAX_UNAUTHENTICATED = 10_000
# The most events one query returns when it asks for none in particular, and at most.
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000

# Outcomes.
ALLOWED = "allowed"
REFUSED = "refused"
FAILED = "failed"
# The code of a refusal for want of a valid credential (gRPC's name for it).
UNAUTHENTICATED = "UNAUTHENTICATED"
# Which rows are unauthenticated refusals: the very terms of the partial index of migration 8.
_UNAUTHENTICATED_ROWS = f"outcome = '{REFUSED}' AND code = '{UNAUTHENTICATED}'"
_OTHER_ROWS = f"NOT ({_UNAUTHENTICATED_ROWS})"


@dataclass(frozen=True)
class AuditRecord:
    """One event to append. `detail` says what changed or why it was refused: never a secret."""

    time: float  # epoch seconds
    principal: str
    verb: str
    kind: str
    name: str
    environment: str
    outcome: str
    code: str  # the gRPC status code's name when not OK, else ""
    detail: str
    method: str


def unauthenticated(record: AuditRecord) -> bool:
    """Whether `record` is a refusal of a caller with no valid credential (bound apart)."""
    return record.outcome == REFUSED and record.code == UNAUTHENTICATED


@dataclass(frozen=True)
class AuditBounds:
    """How many events the log keeps: `unauthenticated` refusals, and `events` of the rest."""

    events: int = MAX_EVENTS
    unauthenticated: int = MAX_UNAUTHENTICATED


DEFAULT_BOUNDS = AuditBounds()


@dataclass(frozen=True)
class AuditEvent:
    """One stored event: its record and its place in the log."""

    sequence: int
    record: AuditRecord


@dataclass(frozen=True)
class AuditScope:
    """What one reader may see: events of `environments`, and every event of `any_kinds` (the
    kinds shared by every environment: models, regions, ...)."""

    environments: tuple[str, ...]
    any_kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuditQuery:
    """A filter; empty fields filter nothing. `scope` None = everything (an admin)."""

    since: float | None = None
    kind: str = ""
    environment: str = ""
    principal: str = ""
    after_sequence: int = 0
    limit: int = DEFAULT_LIMIT
    scope: AuditScope | None = field(default=None)


_COLUMNS = (
    "time",
    "principal",
    "verb",
    "kind",
    "name",
    "environment",
    "outcome",
    "code",
    "detail",
    "method",
)


def append_events(
    store: Store, records: Sequence[AuditRecord], bounds: AuditBounds = DEFAULT_BOUNDS
) -> list[int]:
    """Append `records` in order (one transaction); past a bound, the oldest events of that
    class go. Returns the new events' sequence numbers."""
    if not records:
        return []
    placeholders = ", ".join("?" for _ in _COLUMNS)
    sql = f"INSERT INTO audit_events ({', '.join(_COLUMNS)}) VALUES ({placeholders})"
    sequences: list[int] = []
    with store.companion() as conn:
        for record in records:
            cursor = conn.execute(sql, tuple(getattr(record, c) for c in _COLUMNS))
            sequences.append(int(cursor.lastrowid or 0))
        _trim(conn, bounds)
    return sequences


def _trim(conn: sqlite3.Connection, bounds: AuditBounds) -> None:
    """Delete the oldest events of each class past its bound. Both counts are cheap (SQLite
    counts a table without reading it; the unauthenticated rows have their partial index), and
    the deletes walk from the oldest end, where the rows to go are."""
    total = _count(conn, "")
    refused = _count(conn, _UNAUTHENTICATED_ROWS)
    for excess, rows in (
        (refused - bounds.unauthenticated, _UNAUTHENTICATED_ROWS),
        (total - refused - bounds.events, _OTHER_ROWS),
    ):
        if excess > 0:
            conn.execute(
                "DELETE FROM audit_events WHERE sequence IN (SELECT sequence FROM audit_events "
                f"WHERE {rows} ORDER BY sequence LIMIT ?)",
                (excess,),
            )


def _count(conn: sqlite3.Connection, rows: str) -> int:
    where = f" WHERE {rows}" if rows else ""
    return int(conn.execute(f"SELECT COUNT(*) FROM audit_events{where}").fetchone()[0])


def list_events(store: Store, query: AuditQuery) -> list[AuditEvent]:
    """The newest `query.limit` events that match, oldest first."""
    where: list[str] = []
    args: list[object] = []
    if query.since is not None:
        where.append("time >= ?")
        args.append(query.since)
    for column in ("kind", "environment", "principal"):
        if value := getattr(query, column):
            where.append(f"{column} = ?")
            args.append(value)
    if query.after_sequence:
        where.append("sequence > ?")
        args.append(query.after_sequence)
    if query.scope is not None:
        where.append(_scope_clause(query.scope, args))
    limit = min(max(query.limit, 1), MAX_LIMIT) if query.limit > 0 else DEFAULT_LIMIT
    sql = (
        f"SELECT * FROM (SELECT sequence, {', '.join(_COLUMNS)} FROM audit_events"
        f"{' WHERE ' + ' AND '.join(where) if where else ''} "
        "ORDER BY sequence DESC LIMIT ?) ORDER BY sequence ASC"
    )
    with store.companion() as conn:
        rows = conn.execute(sql, (*args, limit)).fetchall()
    return [_event(row) for row in rows]


def count_events(store: Store, *, unauthenticated: bool | None = None) -> int:
    """How many events the log holds (only the unauthenticated refusals, or only the rest)."""
    rows = (
        "" if unauthenticated is None else _UNAUTHENTICATED_ROWS if unauthenticated else _OTHER_ROWS
    )
    with store.companion() as conn:
        return _count(conn, rows)


def _scope_clause(scope: AuditScope, args: list[object]) -> str:
    parts: list[str] = []
    if scope.environments:
        parts.append(f"environment IN ({', '.join('?' for _ in scope.environments)})")
        args.extend(scope.environments)
    if scope.any_kinds:
        parts.append(f"kind IN ({', '.join('?' for _ in scope.any_kinds)})")
        args.extend(scope.any_kinds)
    return f"({' OR '.join(parts)})" if parts else "0"


def _event(row: sqlite3.Row) -> AuditEvent:
    return AuditEvent(row["sequence"], AuditRecord(*(row[c] for c in _COLUMNS)))
