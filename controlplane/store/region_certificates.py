"""Each region's certificate of record: the one certificate the mesh port accepts as the region.

A Join makes the new certificate the region's one (an earlier agent's certificate stops opening
anything new); a Renew replaces the certificate that asked for it, which stays accepted for a
short overlap (`previous_until`) so that the agent's renewal sequence has no unsafe window: a
reply lost on the way, or Envoy reconnecting before it read the new file, still gets in with the
old one. The certificate itself is not kept (its holder has it); what is kept is its serial and
expiry (also what `meshline get regions` shows). Status, not configuration: writing it bumps no
revision.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from controlplane.store.errors import StoreError
from controlplane.store.store import Store


@dataclass(frozen=True)
class RegionCertificate:
    """The region's certificate of record (times in epoch seconds), and the one it replaced
    by a renewal while that is still accepted ("" after a Join: nothing else is)."""

    region: str
    serial: str  # lowercase hex
    not_after: float
    issued_at: float
    previous_serial: str = ""
    previous_until: float = 0.0

    def accepts(self, serial: str, now: float) -> bool:
        """Whether a certificate with `serial` may act as the region at `now` (its signature
        and own lifetime are checked by the TLS layer and controlplane.pki.peer)."""
        if serial == self.serial:
            return now < self.not_after
        previous = bool(self.previous_serial) and serial == self.previous_serial
        return previous and now < self.previous_until

    def refusal(self, serial: str, now: float) -> str | None:
        """Why certificate `serial` may not act as the region at `now` (None: it may)."""
        if self.accepts(serial, now):
            return None
        if serial == self.serial:
            return f"certificate {serial} of region '{self.region}' has expired"
        return (
            f"certificate {serial} is no longer region '{self.region}''s: the region's "
            f"certificate is {self.serial} (renewed since, or the region joined again); "
            "use the newest certificate, or join again with a join token"
        )


class CertificateNotOfRecordError(StoreError):
    """The certificate shown is not (or no longer) its region's; the message says which."""


def no_record_refusal(region: str) -> str:
    return (
        f"region '{region}' has no certificate of record (it never joined, or it was "
        "deleted): its agent must join again with a join token"
    )


def write_certificate(conn: sqlite3.Connection, certificate: RegionCertificate) -> None:
    """Make `certificate` its region's certificate of record, inside the caller's transaction."""
    conn.execute(
        "INSERT INTO region_certificates "
        "(region, serial, not_after, issued_at, previous_serial, previous_until) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (region) DO UPDATE SET "
        "serial = excluded.serial, not_after = excluded.not_after, "
        "issued_at = excluded.issued_at, previous_serial = excluded.previous_serial, "
        "previous_until = excluded.previous_until",
        (
            certificate.region,
            certificate.serial,
            certificate.not_after,
            certificate.issued_at,
            certificate.previous_serial,
            certificate.previous_until,
        ),
    )


def record_certificate(store: Store, certificate: RegionCertificate) -> None:
    with store.companion() as conn:
        write_certificate(conn, certificate)


def renew_certificate(
    store: Store,
    shown_serial: str,
    shown_not_after: float,
    renewed: RegionCertificate,
    overlap_s: float,
) -> RegionCertificate:
    """Make `renewed` the region's certificate in place of the one shown, which the record
    must accept (checked in the same transaction: two renewals never both win); the shown one
    stays accepted for `overlap_s` after `renewed.issued_at` (never past its own expiry).
    CertificateNotOfRecordError when the shown certificate is not the region's."""
    now = renewed.issued_at
    with store.companion() as conn:
        record = _read(conn, renewed.region)
        if record is None:
            raise CertificateNotOfRecordError(no_record_refusal(renewed.region))
        if problem := record.refusal(shown_serial, now):
            raise CertificateNotOfRecordError(problem)
        kept = RegionCertificate(
            renewed.region,
            renewed.serial,
            renewed.not_after,
            renewed.issued_at,
            previous_serial=shown_serial,
            previous_until=min(now + overlap_s, shown_not_after),
        )
        write_certificate(conn, kept)
        return kept


def certificate_of_record(store: Store, region: str) -> RegionCertificate | None:
    """The region's certificate of record, or None when it has none (never joined, deleted)."""
    with store.companion() as conn:
        return _read(conn, region)


def region_certificates(store: Store) -> dict[str, RegionCertificate]:
    """Every region's certificate of record, by region name."""
    with store.companion() as conn:
        rows = conn.execute("SELECT * FROM region_certificates ORDER BY region").fetchall()
    return {row["region"]: _from_row(row) for row in rows}


def _read(conn: sqlite3.Connection, region: str) -> RegionCertificate | None:
    row = conn.execute("SELECT * FROM region_certificates WHERE region = ?", (region,)).fetchone()
    return None if row is None else _from_row(row)


def _from_row(row: sqlite3.Row) -> RegionCertificate:
    return RegionCertificate(
        row["region"],
        row["serial"],
        row["not_after"],
        row["issued_at"],
        row["previous_serial"],
        row["previous_until"],
    )
