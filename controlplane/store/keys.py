"""API keys beside the resources: each key's scope and the public halves of its secrets.

A secret is a token signed by a key pair made for it alone (controlplane/api/key_tokens.py);
only the public key is kept here, so nothing in this file's tables can make or reveal a
secret. Keys are user configuration the gateways enforce, so every change bumps the store's
revision and reaches the change feed (kind `KIND_API_KEY`), as an apply does; they are no
document kind (`apply`/`delete` never see them).

Times are epoch seconds, passed in by the caller (`now`), so every decision here is a pure
function of the stored rows and the clock the caller chose.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from controlplane.store.changes import CONFIGURED, CREATED, Change
from controlplane.store.credential_lifecycle import credential_phase
from controlplane.store.errors import NotFoundError, StoreError
from controlplane.store.resources import KIND_API_KEY, ResourceKey
from controlplane.store.store import Store
from meshline.phases import ApiKeyPhase
from meshline.v1.resources_pb2 import ApiKey


@dataclass(frozen=True)
class KeyCredential:
    """One secret that works: what a gateway's JWKS lists (meshline.jwk.public_jwk)."""

    key_id: str
    name: str
    public_key: str  # base64url (no padding) of the raw Ed25519 public key: the JWK `x`
    valid_until: float | None  # epoch seconds, None = no end


@dataclass(frozen=True)
class KeyScope:
    """What a key may call; fixed at creation. Empty environment = every environment; empty
    deployments = every deployment (of that environment)."""

    environment: str = ""
    deployments: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredKey:
    """One API key as stored (never its secret)."""

    name: str
    scope: KeyScope
    expires_at: float | None  # None = never
    created_at: float
    updated_at: float
    rotated_at: float | None
    revoked_at: float | None
    key_id: str  # the current secret's kid
    previous_key_id: str  # "" when there is none
    previous_valid_until: float | None

    def phase(self, now: float) -> ApiKeyPhase:
        """Revoked wins over Expired: a revoked key never works again."""
        return credential_phase(ApiKeyPhase, self.revoked_at, self.expires_at, now)


class KeyExistsError(StoreError):
    """A key of that name exists (revoked keys keep their name)."""

    def __init__(self, name: str, revoked: bool) -> None:
        reason = " (revoked; revoked keys keep their name: pick another name)" if revoked else ""
        super().__init__(f"API key '{name}' already exists{reason}")
        self.name = name
        self.revoked = revoked


class KeyStateError(StoreError):
    """The key cannot do that in its phase (rotating a revoked or expired key)."""


def _key(name: str) -> ResourceKey:
    return ResourceKey(KIND_API_KEY, name)


def create_key(
    store: Store,
    name: str,
    scope: KeyScope,
    expires_at: float | None,
    key_id: str,
    public_key: str,
    now: float,
) -> StoredKey:
    """Store a new key with its first secret's public key; KeyExistsError when the name is
    taken. The caller validated the name and scope and minted the secret."""
    with store.changing() as (conn, changes):
        row = conn.execute("SELECT revoked_at FROM api_keys WHERE name = ?", (name,)).fetchone()
        if row is not None:
            raise KeyExistsError(name, revoked=row["revoked_at"] is not None)
        conn.execute(
            "INSERT INTO api_keys (name, environment, deployments, roles, expires_at, "
            "created_at, updated_at, rotated_at, revoked_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
            (
                name,
                scope.environment,
                json.dumps(list(scope.deployments)),
                json.dumps(list(scope.roles)),
                expires_at,
                now,
                now,
            ),
        )
        _insert_credential(conn, name, key_id, public_key, now)
        changes.append(Change(_key(name), CREATED))
        return _read(conn, name)


def get_key(store: Store, name: str) -> StoredKey:
    """One key; NotFoundError when there is none of that name."""
    with store.companion() as conn:
        return _read(conn, name)


def list_keys(store: Store, environment: str = "") -> list[StoredKey]:
    """Every key sorted by name, or (`environment` given) those that may call it: keys of
    that environment and keys of every environment."""
    with store.companion() as conn:
        if environment:
            rows = conn.execute(
                "SELECT name FROM api_keys WHERE environment IN (?, '') ORDER BY name",
                (environment,),
            ).fetchall()
        else:
            rows = conn.execute("SELECT name FROM api_keys ORDER BY name").fetchall()
        return [_read(conn, row["name"]) for row in rows]


def revoke_key(store: Store, name: str, now: float) -> StoredKey:
    """Stop every secret of the key at once. Revoking a revoked key changes nothing (its
    first revocation time stays)."""
    with store.changing() as (conn, changes):
        key = _read(conn, name)
        if key.revoked_at is not None:
            return key
        conn.execute(
            "UPDATE api_keys SET revoked_at = ?, updated_at = ? WHERE name = ?", (now, now, name)
        )
        changes.append(Change(_key(name), CONFIGURED))
        return _read(conn, name)


def rotate_key(
    store: Store, name: str, key_id: str, public_key: str, grace_s: float, now: float
) -> StoredKey:
    """Make `key_id` the key's current secret; the one before it works until `now + grace_s`
    (never past the key's expiry), and any older one stops now. KeyStateError for a revoked
    or expired key (its scope and expiry are fixed, so a new secret would not work either)."""
    with store.changing() as (conn, changes):
        key = _read(conn, name)
        phase = key.phase(now)
        if phase is not ApiKeyPhase.ACTIVE:
            raise KeyStateError(
                f"API key '{name}' is {phase.lower()}: it cannot be rotated; create a new key"
            )
        until = now + grace_s
        if key.expires_at is not None:
            until = min(until, key.expires_at)
        # Only one previous secret is kept: the one before it ends now.
        conn.execute(
            "DELETE FROM api_key_credentials WHERE name = ? AND valid_until IS NOT NULL", (name,)
        )
        conn.execute(
            "UPDATE api_key_credentials SET valid_until = ? WHERE name = ? AND valid_until IS NULL",
            (until, name),
        )
        _insert_credential(conn, name, key_id, public_key, now)
        conn.execute(
            "UPDATE api_keys SET rotated_at = ?, updated_at = ? WHERE name = ?", (now, now, name)
        )
        changes.append(Change(_key(name), CONFIGURED))
        return _read(conn, name)


def active_credentials(store: Store, now: float) -> tuple[KeyCredential, ...]:
    """Every secret that works at `now`, sorted by key_id: the current secret of each key
    neither revoked nor expired, and previous secrets still within their grace."""
    with store.companion() as conn:
        rows = conn.execute(
            "SELECT c.key_id, c.name, c.public_key, c.valid_until, k.expires_at "
            "FROM api_key_credentials c JOIN api_keys k ON k.name = c.name "
            "WHERE k.revoked_at IS NULL ORDER BY c.key_id"
        ).fetchall()
    working = []
    for row in rows:
        ends = [t for t in (row["valid_until"], row["expires_at"]) if t is not None]
        until = min(ends) if ends else None
        if until is None or now < until:
            working.append(KeyCredential(row["key_id"], row["name"], row["public_key"], until))
    return tuple(working)


def rfc3339(epoch_s: float) -> str:
    """UTC RFC 3339, with milliseconds only when the time has a fraction of a second."""
    spec = "seconds" if float(epoch_s).is_integer() else "milliseconds"
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def to_api_key(key: StoredKey, now: float) -> ApiKey:
    """The API's view of a key at `now` (enforced_in/pending_in are left to the caller)."""
    message = ApiKey()
    message.metadata.name = key.name
    message.metadata.created_at = rfc3339(key.created_at)
    message.metadata.updated_at = rfc3339(key.updated_at)
    message.metadata.generation = 1  # the scope never changes
    message.spec.environment = key.scope.environment
    message.spec.deployments.extend(key.scope.deployments)
    message.spec.roles.extend(key.scope.roles)
    if key.expires_at is not None:
        message.spec.expires_at = rfc3339(key.expires_at)
    status = message.status
    status.phase = key.phase(now)
    status.key_id = key.key_id
    status.created_at = rfc3339(key.created_at)
    if key.revoked_at is not None:
        status.revoked_at = rfc3339(key.revoked_at)
    if key.rotated_at is not None:
        status.rotated_at = rfc3339(key.rotated_at)
    if key.previous_key_id and key.previous_valid_until is not None:
        status.previous_key_id = key.previous_key_id
        status.previous_valid_until = rfc3339(key.previous_valid_until)
    return message


def _insert_credential(
    conn: sqlite3.Connection, name: str, key_id: str, public_key: str, now: float
) -> None:
    conn.execute(
        "INSERT INTO api_key_credentials (key_id, name, public_key, issued_at, valid_until) "
        "VALUES (?, ?, ?, ?, NULL)",
        (key_id, name, public_key, now),
    )


def _read(conn: sqlite3.Connection, name: str) -> StoredKey:
    row = conn.execute("SELECT * FROM api_keys WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NotFoundError(_key(name))
    current = conn.execute(
        "SELECT key_id FROM api_key_credentials WHERE name = ? AND valid_until IS NULL", (name,)
    ).fetchone()
    previous = conn.execute(
        "SELECT key_id, valid_until FROM api_key_credentials "
        "WHERE name = ? AND valid_until IS NOT NULL ORDER BY issued_at DESC LIMIT 1",
        (name,),
    ).fetchone()
    return StoredKey(
        name=row["name"],
        scope=KeyScope(
            environment=row["environment"],
            deployments=tuple(json.loads(row["deployments"])),
            roles=tuple(json.loads(row["roles"])),
        ),
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        rotated_at=row["rotated_at"],
        revoked_at=row["revoked_at"],
        key_id=current["key_id"] if current else "",
        previous_key_id=previous["key_id"] if previous else "",
        previous_valid_until=previous["valid_until"] if previous else None,
    )
