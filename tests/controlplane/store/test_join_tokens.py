"""Join tokens in a real SQLite store: only a hash of the secret on disk, verdicts at a given
time (unknown, wrong secret, revoked, expired), uses counted with the certificate recorded, and
what reaches the change feed."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.store import (
    CONFIGURED,
    CREATED,
    KIND_REGION,
    ChangeEvent,
    NotFoundError,
    ResourceKey,
    Store,
)
from controlplane.store.join_tokens import (
    KIND_JOIN_TOKEN,
    JoinTokenExistsError,
    JoinTokenRefusedError,
    Refusal,
    create_join_token,
    get_join_token,
    list_join_tokens,
    record_join,
    revoke_join_token,
    to_join_token,
    verify_join_token,
)
from controlplane.store.region_certificates import (
    RegionCertificate,
    record_certificate,
    region_certificates,
)
from meshline import join_token
from meshline.phases import JoinTokenPhase
from meshline.v1.resources_pb2 import FlavorSet, RegionSpec

T0 = 1_800_000_000.0
FACTS = RegionSpec(country="DE", continent="EU", flavors=FlavorSet(cpu=["c1"]), max_replicas=4)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "meshline.db") as s:
        yield s


def _create(
    store: Store, region: str = "eu", expires_at: float | None = None, now: float = T0
) -> join_token.JoinTokenText:
    text = join_token.mint()
    create_join_token(store, text.token_id, text.secret, region, FACTS, expires_at, now)
    return text


def _cert(region: str = "eu", serial: str = "ab12") -> RegionCertificate:
    return RegionCertificate(region, serial, T0 + 86400, T0)


def test_only_a_hash_of_the_secret_reaches_the_disk(store: Store, tmp_path: Path) -> None:
    text = _create(store)
    token = verify_join_token(store, text.token_id, text.secret, T0)
    assert token.region == "eu" and token.facts == FACTS
    files = [p for p in tmp_path.iterdir() if p.is_file()]
    assert files  # the database and its WAL
    for path in files:
        data = path.read_bytes()
        assert text.secret.encode() not in data and str(text).encode() not in data, path
    with store.companion() as conn:
        row = conn.execute("SELECT * FROM join_tokens").fetchone()
    assert row["secret_hash"] != text.secret and len(row["secret_hash"]) == 64


def _refusal(store: Store, token_id: str, secret: str, now: float) -> JoinTokenRefusedError:
    with pytest.raises(JoinTokenRefusedError) as caught:
        verify_join_token(store, token_id, secret, now)
    assert secret not in str(caught.value)
    return caught.value


def test_verdicts(store: Store) -> None:
    text = _create(store, expires_at=T0 + 60)
    other = join_token.mint()
    unknown = _refusal(store, other.token_id, text.secret, T0)
    assert unknown.refusal is Refusal.UNKNOWN
    assert str(unknown) == f"join token {other.token_id} does not exist"
    wrong = _refusal(store, text.token_id, other.secret, T0)
    assert wrong.refusal is Refusal.WRONG_SECRET
    assert str(wrong) == f"join token {text.token_id}: the secret is wrong"
    assert verify_join_token(store, text.token_id, text.secret, T0 + 59).uses == 0
    expired = _refusal(store, text.token_id, text.secret, T0 + 60)
    assert expired.refusal is Refusal.EXPIRED
    assert str(expired) == f"join token {text.token_id} expired at 2027-01-15T08:01:00Z"
    # A wrong secret learns nothing of the phase.
    assert _refusal(store, text.token_id, other.secret, T0 + 60).refusal is Refusal.WRONG_SECRET
    revoke_join_token(store, text.token_id, T0 + 10)
    revoked = _refusal(store, text.token_id, text.secret, T0 + 90)  # revoked wins over expired
    assert revoked.refusal is Refusal.REVOKED
    assert str(revoked) == f"join token {text.token_id} was revoked at 2027-01-15T08:00:10Z"


def test_a_join_counts_a_use_and_records_the_certificate(store: Store) -> None:
    text = _create(store)
    revision = store.revision
    record_join(store, text.token_id, text.secret, _cert(serial="01"), T0 + 5)
    recorded = record_join(store, text.token_id, text.secret, _cert(serial="02"), T0 + 9)
    token = recorded.token
    assert (token.uses, token.last_used_at, recorded.registered) == (2, T0 + 9, False)
    assert region_certificates(store) == {"eu": RegionCertificate("eu", "02", T0 + 86400, T0)}
    assert store.revision == revision  # status, not configuration


def test_a_join_registers_its_region_in_the_same_transaction(store: Store) -> None:
    text = _create(store)
    events: list[ChangeEvent] = []
    store.add_listener(events.append)
    revision = store.revision
    recorded = record_join(store, text.token_id, text.secret, _cert(), T0 + 5, FACTS)
    assert recorded.registered and recorded.token.uses == 1
    assert store.get_region("eu").spec == FACTS
    assert store.revision == revision + 1  # a new region is configuration
    assert [(c.key, c.action) for e in events for c in e.changes] == [
        (ResourceKey(KIND_REGION, "eu"), CREATED)
    ]
    # The region exists now (or was applied): what is stored wins, nothing is bumped.
    again = record_join(store, text.token_id, text.secret, _cert(serial="02"), T0 + 9, FACTS)
    assert not again.registered and store.revision == revision + 1 and len(events) == 1


def _nothing_kept(store: Store, text: join_token.JoinTokenText) -> None:
    with pytest.raises(NotFoundError):
        store.get_region("eu")
    assert get_join_token(store, text.token_id).uses == 0
    assert region_certificates(store) == {}


def test_a_token_revoked_between_the_check_and_the_record_registers_nothing(
    store: Store,
) -> None:
    """The Join checked the token, then it was revoked: the transaction checks it again."""
    text = _create(store)
    verify_join_token(store, text.token_id, text.secret, T0 + 1)  # the Join's first check
    revision = store.revision
    revoke_join_token(store, text.token_id, T0 + 2)
    with pytest.raises(JoinTokenRefusedError, match="was revoked"):
        record_join(store, text.token_id, text.secret, _cert(), T0 + 3, FACTS)
    _nothing_kept(store, text)
    assert store.revision == revision + 1  # the revocation only


def test_a_store_failure_at_the_record_keeps_nothing(store: Store) -> None:
    """The certificate's row cannot be written (the disk, say): the region registered and
    the use counted earlier in the transaction are rolled back with it."""
    text = _create(store)
    with store.companion() as conn:
        conn.execute(
            "CREATE TRIGGER no_room BEFORE INSERT ON region_certificates "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    events: list[ChangeEvent] = []
    store.add_listener(events.append)
    with pytest.raises(sqlite3.IntegrityError, match="disk is full"):
        record_join(store, text.token_id, text.secret, _cert(), T0 + 1, FACTS)
    _nothing_kept(store, text)
    assert events == []


def test_a_refused_join_records_nothing(store: Store) -> None:
    text = _create(store)
    revoke_join_token(store, text.token_id, T0)
    with pytest.raises(JoinTokenRefusedError):
        record_join(store, text.token_id, text.secret, _cert(), T0 + 1)
    with pytest.raises(JoinTokenRefusedError):
        record_join(store, text.token_id, "x" * 43, _cert(), T0 + 1)
    assert get_join_token(store, text.token_id).uses == 0
    assert region_certificates(store) == {}


def test_create_and_revoke_reach_the_change_feed(store: Store) -> None:
    events: list[ChangeEvent] = []
    store.add_listener(events.append)
    text = _create(store)
    revoke_join_token(store, text.token_id, T0 + 1)
    again = revoke_join_token(store, text.token_id, T0 + 2)  # nothing more changes
    assert again.revoked_at == T0 + 1
    key = ResourceKey(KIND_JOIN_TOKEN, text.token_id)
    assert [(e.changes[0].key, e.changes[0].action) for e in events] == [
        (key, CREATED),
        (key, CONFIGURED),
    ]
    assert [e.revision for e in events] == [1, 2] and store.revision == 2


def test_ids_are_unique_and_unknown_ones_are_not_found(store: Store) -> None:
    text = _create(store)
    with pytest.raises(JoinTokenExistsError):
        create_join_token(store, text.token_id, "other", "us", FACTS, None, T0)
    with pytest.raises(NotFoundError, match="join token '0000beef' not found"):
        revoke_join_token(store, "0000beef", T0)
    with pytest.raises(NotFoundError, match="join token '0000beef' not found"):
        get_join_token(store, "0000beef")


def test_list_newest_first_and_by_region(store: Store) -> None:
    first = _create(store, "eu", now=T0)
    second = _create(store, "us", now=T0 + 1)
    third = _create(store, "eu", now=T0 + 2)
    assert [t.token_id for t in list_join_tokens(store)] == [
        third.token_id,
        second.token_id,
        first.token_id,
    ]
    assert [t.token_id for t in list_join_tokens(store, "eu")] == [third.token_id, first.token_id]
    assert list_join_tokens(store, "ap") == []


def test_the_api_view(store: Store) -> None:
    text = _create(store, expires_at=T0 + 3600)
    record_join(store, text.token_id, text.secret, _cert(), T0 + 5)
    message = to_join_token(get_join_token(store, text.token_id), T0 + 10)
    assert message.metadata.name == text.token_id
    assert message.metadata.created_at == "2027-01-15T08:00:00Z"
    assert message.metadata.updated_at == "2027-01-15T08:00:05Z"
    assert message.spec.region == "eu" and message.spec.facts == FACTS
    assert message.spec.expires_at == "2027-01-15T09:00:00Z"
    assert message.status.phase == JoinTokenPhase.ACTIVE
    assert (message.status.last_used_at, message.status.uses) == ("2027-01-15T08:00:05Z", 1)
    assert not message.status.revoked_at
    assert to_join_token(get_join_token(store, text.token_id), T0 + 3600).status.phase == (
        JoinTokenPhase.EXPIRED
    )


def test_region_certificates_keep_the_latest_per_region(store: Store) -> None:
    record_certificate(store, _cert("eu", "01"))
    record_certificate(store, _cert("us", "02"))
    record_certificate(store, RegionCertificate("eu", "03", T0 + 99, T0 + 1))
    assert region_certificates(store) == {
        "eu": RegionCertificate("eu", "03", T0 + 99, T0 + 1),
        "us": _cert("us", "02"),
    }
