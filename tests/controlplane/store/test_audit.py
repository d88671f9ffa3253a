"""The audit log in the store: appended in order, filtered, bounded, and kept across reopening."""

from __future__ import annotations

from pathlib import Path

from controlplane.store import Store
from controlplane.store.audit import (
    ALLOWED,
    REFUSED,
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
            append_events(store, [record(float(t), name=f"n{t}")], max_events=4)
        assert count_events(store) == 4
        assert [e.record.name for e in list_events(store, AuditQuery())] == [
            "n6",
            "n7",
            "n8",
            "n9",
        ]


def test_the_log_survives_reopening(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        append_events(store, [record(5.0, detail="configured: version v1 -> v2")])
    with Store.open(tmp_path / "s.db") as store:
        (event,) = list_events(store, AuditQuery())
        assert event.record.detail == "configured: version v1 -> v2"
        append_events(store, [record(6.0)])
        assert list_events(store, AuditQuery())[-1].sequence > event.sequence
