"""Each region's current mesh certificate (serial, expiry), for RegionStatus.

The certificate itself is not kept (its holder has it); what is kept is what `meshline get
regions` shows. Status, not configuration: writing it bumps no revision.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from controlplane.store.store import Store


@dataclass(frozen=True)
class RegionCertificate:
    """The last certificate issued to a region (times in epoch seconds)."""

    region: str
    serial: str  # lowercase hex
    not_after: float
    issued_at: float


def write_certificate(conn: sqlite3.Connection, certificate: RegionCertificate) -> None:
    """Record `certificate` as its region's current one, inside the caller's transaction."""
    conn.execute(
        "INSERT INTO region_certificates (region, serial, not_after, issued_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (region) DO UPDATE SET "
        "serial = excluded.serial, not_after = excluded.not_after, issued_at = excluded.issued_at",
        (certificate.region, certificate.serial, certificate.not_after, certificate.issued_at),
    )


def record_certificate(store: Store, certificate: RegionCertificate) -> None:
    with store.companion() as conn:
        write_certificate(conn, certificate)


def region_certificates(store: Store) -> dict[str, RegionCertificate]:
    """Every region's current certificate, by region name."""
    with store.companion() as conn:
        rows = conn.execute("SELECT * FROM region_certificates ORDER BY region").fetchall()
    return {
        row["region"]: RegionCertificate(
            row["region"], row["serial"], row["not_after"], row["issued_at"]
        )
        for row in rows
    }
