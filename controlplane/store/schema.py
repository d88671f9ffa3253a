"""Versioned SQLite schema: an ordered list of migrations applied when the store opens.

The version lives in `PRAGMA user_version`; migration N brings the schema to version N. A file
with a higher version than the code knows is refused rather than guessed at.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from controlplane.store.errors import SchemaVersionError


@dataclass(frozen=True)
class Migration:
    """One step of the schema; `version` is the schema version after it ran."""

    version: int
    description: str
    statements: tuple[str, ...]


_RESOURCE_COLUMNS = """
    labels TEXT NOT NULL,
    spec BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    generation INTEGER NOT NULL"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial schema: counters, models with versions, environments, regions, deployments",
        (
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
            "INSERT INTO meta (key, value) VALUES ('boot_epoch', 0), ('revision', 0)",
            f"CREATE TABLE models (name TEXT PRIMARY KEY, {_RESOURCE_COLUMNS})",
            """CREATE TABLE model_versions (
                model TEXT NOT NULL REFERENCES models(name) ON DELETE CASCADE,
                name TEXT NOT NULL,
                position INTEGER NOT NULL,
                runtime TEXT NOT NULL,
                path TEXT NOT NULL,
                PRIMARY KEY (model, name))""",
            f"CREATE TABLE environments (name TEXT PRIMARY KEY, {_RESOURCE_COLUMNS})",
            f"""CREATE TABLE regions (
                name TEXT PRIMARY KEY,
                country TEXT NOT NULL, {_RESOURCE_COLUMNS})""",
            f"""CREATE TABLE deployments (
                environment TEXT NOT NULL REFERENCES environments(name),
                name TEXT NOT NULL,
                model TEXT NOT NULL,
                version TEXT NOT NULL, {_RESOURCE_COLUMNS},
                PRIMARY KEY (environment, name),
                FOREIGN KEY (model, version) REFERENCES model_versions(model, name))""",
            "CREATE INDEX deployments_by_model ON deployments (model, version)",
        ),
    ),
    Migration(
        2,
        "rollout history: one row per version change of a deployment",
        (
            """CREATE TABLE rollouts (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                environment TEXT NOT NULL,
                deployment TEXT NOT NULL,
                body BLOB NOT NULL)""",
            "CREATE INDEX rollouts_by_deployment ON rollouts (environment, deployment, id)",
        ),
    ),
    Migration(
        3,
        "model versions record their artifact's sha256 (the registry's references)",
        (
            "ALTER TABLE model_versions ADD COLUMN sha256 TEXT NOT NULL DEFAULT ''",
            "CREATE INDEX model_versions_by_sha256 ON model_versions (sha256)",
        ),
    ),
    Migration(
        4,
        "what each region's Envoy accepted and rejected (quarantine), shared by every replica",
        (
            """CREATE TABLE accepted_routes (
                region TEXT NOT NULL,
                environment TEXT NOT NULL,
                deployment TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                form TEXT NOT NULL,
                PRIMARY KEY (region, environment, deployment))""",
            """CREATE TABLE quarantines (
                region TEXT NOT NULL,
                environment TEXT NOT NULL,
                deployment TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                type_url TEXT NOT NULL,
                version TEXT NOT NULL,
                message TEXT NOT NULL,
                kept TEXT NOT NULL,
                PRIMARY KEY (region, environment, deployment))""",
        ),
    ),
    Migration(
        5,
        "API keys and the public halves of their secrets (never a secret or a private key)",
        (
            """CREATE TABLE api_keys (
                name TEXT PRIMARY KEY,
                environment TEXT NOT NULL,
                deployments TEXT NOT NULL,
                roles TEXT NOT NULL,
                expires_at REAL,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                rotated_at REAL,
                revoked_at REAL)""",
            """CREATE TABLE api_key_credentials (
                key_id TEXT PRIMARY KEY,
                name TEXT NOT NULL REFERENCES api_keys(name) ON DELETE CASCADE,
                public_key TEXT NOT NULL,
                issued_at REAL NOT NULL,
                valid_until REAL)""",
            "CREATE INDEX api_key_credentials_by_name ON api_key_credentials (name, issued_at)",
        ),
    ),
    Migration(
        6,
        "the audit log: every change made or refused through the management API",
        (
            """CREATE TABLE audit_events (
                sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                time REAL NOT NULL,
                principal TEXT NOT NULL,
                verb TEXT NOT NULL,
                kind TEXT NOT NULL,
                name TEXT NOT NULL,
                environment TEXT NOT NULL,
                outcome TEXT NOT NULL,
                code TEXT NOT NULL,
                detail TEXT NOT NULL,
                method TEXT NOT NULL)""",
            "CREATE INDEX audit_events_by_time ON audit_events (time)",
        ),
    ),
    Migration(
        7,
        "join tokens (a hash of each secret, never the secret) and the regions' certificates",
        (
            """CREATE TABLE join_tokens (
                token_id TEXT PRIMARY KEY,
                secret_hash TEXT NOT NULL,
                region TEXT NOT NULL,
                facts TEXT NOT NULL,
                expires_at REAL,
                created_at REAL NOT NULL,
                revoked_at REAL,
                last_used_at REAL,
                uses INTEGER NOT NULL DEFAULT 0)""",
            "CREATE INDEX join_tokens_by_region ON join_tokens (region)",
            """CREATE TABLE region_certificates (
                region TEXT PRIMARY KEY,
                serial TEXT NOT NULL,
                not_after REAL NOT NULL,
                issued_at REAL NOT NULL)""",
        ),
    ),
    Migration(
        8,
        "the audit log's unauthenticated refusals, counted and trimmed under their own bound",
        (
            "CREATE INDEX audit_events_unauthenticated ON audit_events (sequence) "
            "WHERE outcome = 'refused' AND code = 'UNAUTHENTICATED'",
        ),
    ),
    Migration(
        9,
        "a region's certificate of record keeps the one it replaced by a renewal and until when "
        "that one is still accepted; records of regions deleted before are dropped",
        (
            "ALTER TABLE region_certificates ADD COLUMN previous_serial TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE region_certificates ADD COLUMN previous_until REAL NOT NULL DEFAULT 0",
            "DELETE FROM region_certificates WHERE region NOT IN (SELECT name FROM regions)",
        ),
    ),
    Migration(
        10,
        "the memory one worker of an artifact used once it first served, per runtime",
        (
            """CREATE TABLE footprints (
                sha256 TEXT NOT NULL,
                runtime TEXT NOT NULL,
                memory_bytes INTEGER NOT NULL,
                region TEXT NOT NULL,
                measured_at TEXT NOT NULL,
                PRIMARY KEY (sha256, runtime))""",
        ),
    ),
)


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration], where: str) -> int:
    """Bring the schema up to the last migration; returns the resulting version.

    Each migration runs in its own transaction together with its version bump, so a crash
    leaves the file at a well-defined version.
    """
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise ValueError(
                f"migrations out of order: #{expected} has version {migration.version}"
            )
    known = len(migrations)
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read inside the write lock: another process may have migrated meanwhile.
            current = schema_version(conn)
            if current > known:
                raise SchemaVersionError(
                    f"{where}: schema version {current} is newer than this meshline knows "
                    f"(up to {known}); upgrade meshline or point it at another store file"
                )
            if current == known:
                conn.execute("COMMIT")
                return current
            migration = migrations[current]
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(migration.version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
