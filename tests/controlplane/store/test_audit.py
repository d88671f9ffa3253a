"""The audit log in the store: appended in order, filtered, bounded (unauthenticated refusals
apart from the rest), and kept across reopening."""

from __future__ import annotations

from pathlib import Path

from controlplane.store import Store
from controlplane.store.audit import (
    ALLOWED,
    FAILED,
    REFUSED,
    UNAUTHENTICATED,
    AuditBounds,
    AuditQuery,
    AuditRecord,
    AuditScope,
    append_events,
    count_events,
    list_events,
)


def record(t: float, **fields: str) -> AuditRecord:
    values = {
        "principal": "ci",
        "verb": "apply",
        "kind": "Deployment",
        "name": "fraud",
        "environment": "production",
        "outcome": ALLOWED,
        "code": "",
        "detail": "created",
        "method": "/meshline.v1.ApplyService/Apply",
    }
    values.update(fields)
    return AuditRecord(time=t, **values)  # type: ignore[arg-type]


def test_events_come_back_oldest_first_with_increasing_sequences(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        revision = store.revision
        seqs = append_events(store, [record(1.0), record(2.0, name="b"), record(3.0, name="c")])
        assert seqs == sorted(seqs) and len(set(seqs)) == 3
        events = list_events(store, AuditQuery())
        assert [e.record.name for e in events] == ["fraud", "b", "c"]
        assert [e.sequence for e in events] == seqs
        assert store.revision == revision  # no configuration change: nothing to reconcile


def test_filters(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        append_events(
            store,
            [
                record(10.0),
                record(20.0, kind="Model", environment="", name="m"),
                record(30.0, principal="anonymous", outcome=REFUSED, environment="staging"),
                record(40.0, environment="staging"),
            ],
        )

        def names(query: AuditQuery) -> list[tuple[float, str]]:
            return [(e.record.time, e.record.environment) for e in list_events(store, query)]

        assert names(AuditQuery(since=25.0)) == [(30.0, "staging"), (40.0, "staging")]
        assert names(AuditQuery(kind="Model")) == [(20.0, "")]
        assert names(AuditQuery(environment="production")) == [(10.0, "production")]
        assert names(AuditQuery(principal="anonymous")) == [(30.0, "staging")]
        first = list_events(store, AuditQuery())[1].sequence
        assert names(AuditQuery(after_sequence=first)) == [(30.0, "staging"), (40.0, "staging")]
        assert names(AuditQuery(limit=2)) == [(30.0, "staging"), (40.0, "staging")]
        scoped = AuditQuery(scope=AuditScope(("staging",), ("Model",)))
        assert names(scoped) == [(20.0, ""), (30.0, "staging"), (40.0, "staging")]
        assert names(AuditQuery(scope=AuditScope(()))) == []


def test_the_log_is_bounded_the_oldest_go(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        for t in range(10):
            append_events(store, [record(float(t), name=f"n{t}")], AuditBounds(events=4))
        assert count_events(store) == 4
        assert [e.record.name for e in list_events(store, AuditQuery())] == [
            "n6",
            "n7",
            "n8",
            "n9",
        ]


def test_unauthenticated_refusals_never_evict_other_events(tmp_path: Path) -> None:
    """A flood of refusals of callers with no valid credential is bounded on its own: the
    changes, failures and authenticated refusals before it all stay."""
    bounds = AuditBounds(events=5, unauthenticated=3)
    anonymous = {"principal": "anonymous", "outcome": REFUSED, "code": UNAUTHENTICATED}
    with Store.open(tmp_path / "s.db") as store:
        real = [
            record(1.0, name="applied"),
            record(2.0, name="failed", outcome=FAILED, code="INVALID_ARGUMENT"),
            record(3.0, name="denied", outcome=REFUSED, code="PERMISSION_DENIED"),
        ]
        append_events(store, real, bounds)
        for t in range(200):
            append_events(store, [record(10.0 + t, name=f"anon{t}", **anonymous)], bounds)
        names = [e.record.name for e in list_events(store, AuditQuery())]
        assert names == ["applied", "failed", "denied", "anon197", "anon198", "anon199"]
        assert count_events(store, unauthenticated=True) == 3
        assert count_events(store, unauthenticated=False) == 3
        # the rest keeps its own bound, whatever the refusals
        for t in range(4):
            append_events(store, [record(500.0 + t, name=f"later{t}")], bounds)
        names = [e.record.name for e in list_events(store, AuditQuery())]
        assert names == [
            "denied",
            "anon197",
            "anon198",
            "anon199",
            "later0",
            "later1",
            "later2",
            "later3",
        ]
        # a key that happens to be called "anonymous", refused for its role, is not in the flood
        append_events(
            store,
            [record(600.0, name="named", principal="anonymous", outcome=REFUSED, code="X")],
            bounds,
        )
        assert count_events(store, unauthenticated=True) == 3


def test_unauthenticated_refusals_are_counted_by_their_index(tmp_path: Path) -> None:
    """The count behind the bound reads the partial index of migration 8, not the table."""
    with Store.open(tmp_path / "s.db") as store, store.companion() as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM audit_events "
            "WHERE outcome = 'refused' AND code = 'UNAUTHENTICATED'"
        ).fetchall()
    assert any("audit_events_unauthenticated" in str(row[-1]) for row in plan), plan


def test_the_log_survives_reopening(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        append_events(store, [record(5.0, detail="configured: version v1 -> v2")])
    with Store.open(tmp_path / "s.db") as store:
        (event,) = list_events(store, AuditQuery())
        assert event.record.detail == "configured: version v1 -> v2"
        append_events(store, [record(6.0)])
        assert list_events(store, AuditQuery())[-1].sequence > event.sequence
