"""A region's certificate of record in a real SQLite store: which serial it accepts when, what a
renewal keeps of the certificate it replaced, that a deleted region's record goes with it, and
migration 9 from a file of the previous schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.store import Store
from controlplane.store.region_certificates import (
    CertificateNotOfRecordError,
    RegionCertificate,
    certificate_of_record,
    record_certificate,
    region_certificates,
    renew_certificate,
)
from controlplane.store.schema import MIGRATIONS
from meshline.v1.resources_pb2 import RegionSpec

T0 = 1_800_000_000.0
DAY = 86400.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "meshline.db") as s:
        yield s


RENEWED = RegionCertificate("eu", "02", T0 + DAY, T0, previous_serial="01", previous_until=T0 + 60)


@pytest.mark.parametrize(
    ("record", "serial", "now", "accepted"),
    [
        (RENEWED, "02", T0, True),
        (RENEWED, "02", T0 + DAY - 1, True),
        (RENEWED, "02", T0 + DAY, False),  # the current one, expired
        (RENEWED, "01", T0 + 59, True),  # the one it replaced, within the overlap
        (RENEWED, "01", T0 + 60, False),  # ... and past it
        (RENEWED, "03", T0, False),  # anything else the CA ever issued to the region
        (RegionCertificate("eu", "02", T0 + DAY, T0), "", T0, False),  # after a join: none
    ],
)
def test_which_serial_the_record_accepts(
    record: RegionCertificate, serial: str, now: float, accepted: bool
) -> None:
    assert record.accepts(serial, now) is accepted
    assert (record.refusal(serial, now) is None) is accepted


def test_refusals_name_the_certificate_and_the_way_back() -> None:
    assert RENEWED.refusal("02", T0 + DAY) == "certificate 02 of region 'eu' has expired"
    assert RENEWED.refusal("01", T0 + 61) == (
        "certificate 01 is no longer region 'eu''s: the region's certificate is 02 (renewed "
        "since, or the region joined again); use the newest certificate, or join again with a "
        "join token"
    )


def test_a_renewal_keeps_the_shown_certificate_for_the_overlap_only(store: Store) -> None:
    record_certificate(store, RegionCertificate("eu", "01", T0 + DAY, T0))
    kept = renew_certificate(
        store, "01", T0 + DAY, RegionCertificate("eu", "02", T0 + 2 * DAY, T0 + 100), 60
    )
    assert kept == RegionCertificate("eu", "02", T0 + 2 * DAY, T0 + 100, "01", T0 + 160)
    assert certificate_of_record(store, "eu") == kept
    # Never past the shown certificate's own end.
    late = renew_certificate(
        store,
        "02",
        T0 + 2 * DAY,
        RegionCertificate("eu", "03", T0 + 3 * DAY, T0 + 2 * DAY - 10),
        60,
    )
    assert late.previous_until == T0 + 2 * DAY


def test_a_lost_reply_is_asked_for_again_with_the_old_certificate(store: Store) -> None:
    """01 renewed into 02, but the agent never got 02: it asks again with 01 (within the
    overlap) and gets 03; 02, which nobody holds, opens nothing."""
    record_certificate(store, RegionCertificate("eu", "01", T0 + DAY, T0))
    renew_certificate(store, "01", T0 + DAY, RegionCertificate("eu", "02", T0 + DAY, T0 + 1), 60)
    again = renew_certificate(
        store, "01", T0 + DAY, RegionCertificate("eu", "03", T0 + DAY, T0 + 5), 60
    )
    assert (again.serial, again.previous_serial, again.previous_until) == ("03", "01", T0 + 65)
    assert not again.accepts("02", T0 + 6)


@pytest.mark.parametrize(
    ("shown", "at", "message"),
    [
        ("01", T0 + 61, "certificate 01 is no longer region 'eu''s"),  # past the overlap
        ("0f", T0 + 2, "certificate 0f is no longer region 'eu''s"),  # never the record
    ],
)
def test_a_certificate_not_of_record_renews_nothing(
    store: Store, shown: str, at: float, message: str
) -> None:
    record_certificate(store, RegionCertificate("eu", "01", T0 + DAY, T0))
    renew_certificate(store, "01", T0 + DAY, RegionCertificate("eu", "02", T0 + DAY, T0 + 1), 60)
    before = certificate_of_record(store, "eu")
    with pytest.raises(CertificateNotOfRecordError, match=message):
        renew_certificate(store, shown, T0 + DAY, RegionCertificate("eu", "09", T0 + DAY, at), 60)
    assert certificate_of_record(store, "eu") == before


def test_a_region_without_a_record_renews_nothing(store: Store) -> None:
    with pytest.raises(CertificateNotOfRecordError, match="has no certificate of record"):
        renew_certificate(store, "01", T0 + DAY, RegionCertificate("eu", "02", T0 + DAY, T0), 60)
    assert region_certificates(store) == {}


def test_a_deleted_region_loses_its_record(store: Store) -> None:
    """Applied again later, the region needs a new join: an old certificate opens nothing."""
    store.ensure_region("eu", RegionSpec(country="DE"))
    store.ensure_region("us", RegionSpec(country="US"))
    record_certificate(store, RegionCertificate("eu", "01", T0 + DAY, T0))
    record_certificate(store, RegionCertificate("us", "02", T0 + DAY, T0))
    store.delete_region("eu")
    assert list(region_certificates(store)) == ["us"]
    store.ensure_region("eu", RegionSpec(country="DE"))
    assert certificate_of_record(store, "eu") is None


def test_migration_9_from_the_previous_schema(tmp_path: Path) -> None:
    """A file of schema 8: records keep their serial and accept no other; a record of a
    region deleted before (the previous meshline kept it) is dropped."""
    db = tmp_path / "store.db"
    with Store.open(db, migrations=MIGRATIONS[:8]) as old:
        old.ensure_region("eu", RegionSpec(country="DE"))
        with old.companion() as conn:
            for region in ("eu", "gone"):
                conn.execute(
                    "INSERT INTO region_certificates (region, serial, not_after, issued_at) "
                    "VALUES (?, '01', ?, ?)",
                    (region, T0 + DAY, T0),
                )
    with Store.open(db) as store:
        assert region_certificates(store) == {"eu": RegionCertificate("eu", "01", T0 + DAY, T0)}
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
