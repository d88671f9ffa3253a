"""Join tokens: what lets one agent join the mesh as one region (like kubeadm bootstrap tokens).

Only a SHA-256 of each secret is kept, so nothing in this table lets anyone join. A token's id
is public (the JoinToken's name). Creating and revoking one is user configuration: the commit
bumps the store's revision and reaches the change feed (kind `KIND_JOIN_TOKEN`), as an API
key's does. A join counts a use and records the region's certificate (status, no bump), and
registers the region when it is new (a bump, as an apply), all in one transaction.

Times are epoch seconds passed in by the caller (`now`), so every verdict here is a pure
function of the stored row and the clock the caller chose.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from google.protobuf import json_format

from controlplane.store.changes import CONFIGURED, CREATED, Change
from controlplane.store.credential_lifecycle import credential_phase
from controlplane.store.errors import NotFoundError, StoreError
from controlplane.store.keys import rfc3339
from controlplane.store.region_certificates import RegionCertificate, write_certificate
from controlplane.store.resources import KIND_REGION, ResourceKey
from controlplane.store.store import Store, add_region_if_absent
from meshline.phases import JoinTokenPhase
from meshline.v1.resources_pb2 import JoinToken, RegionSpec

KIND_JOIN_TOKEN = "JoinToken"


@dataclass(frozen=True)
class StoredJoinToken:
    """One join token as stored (never its secret)."""

    token_id: str
    region: str
    facts: RegionSpec
    expires_at: float | None  # None = never
    created_at: float
    revoked_at: float | None
    last_used_at: float | None
    uses: int

    def phase(self, now: float) -> JoinTokenPhase:
        """Revoked wins over Expired: a revoked token never works again."""
        return credential_phase(JoinTokenPhase, self.revoked_at, self.expires_at, now)


class Refusal(StrEnum):
    """Why a join token did not let an agent in."""

    UNKNOWN = "unknown"
    WRONG_SECRET = "wrong secret"
    REVOKED = "revoked"
    EXPIRED = "expired"


class JoinTokenRefusedError(StoreError):
    """The token does not let anyone join now; the message names the token id and why (never
    the secret)."""

    def __init__(self, token_id: str, refusal: Refusal, message: str) -> None:
        super().__init__(message)
        self.token_id = token_id
        self.refusal = refusal


class JoinTokenNotFoundError(NotFoundError):
    def __init__(self, token_id: str) -> None:
        StoreError.__init__(self, f"join token '{token_id}' not found")
        self.key = _key(token_id)


class JoinTokenExistsError(StoreError):
    """A token with that id exists (ids are random: mint another)."""


def secret_hash(secret: str) -> str:
    """What is stored of a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def refusal_of(
    token: StoredJoinToken | None, stored_hash: str, secret: str, token_id: str, now: float
) -> JoinTokenRefusedError | None:
    """Why `secret` does not open token `token_id` at `now` (None: it does). The secret is
    compared in constant time, and before the phase, so a wrong secret learns nothing of it."""
    if token is None:
        return JoinTokenRefusedError(
            token_id, Refusal.UNKNOWN, f"join token {token_id} does not exist"
        )
    if not hmac.compare_digest(stored_hash, secret_hash(secret)):
        return JoinTokenRefusedError(
            token_id, Refusal.WRONG_SECRET, f"join token {token_id}: the secret is wrong"
        )
    phase = token.phase(now)
    if phase is JoinTokenPhase.REVOKED and token.revoked_at is not None:
        return JoinTokenRefusedError(
            token_id,
            Refusal.REVOKED,
            f"join token {token_id} was revoked at {rfc3339(token.revoked_at)}",
        )
    if phase is JoinTokenPhase.EXPIRED and token.expires_at is not None:
        return JoinTokenRefusedError(
            token_id,
            Refusal.EXPIRED,
            f"join token {token_id} expired at {rfc3339(token.expires_at)}",
        )
    return None


def _key(token_id: str) -> ResourceKey:
    return ResourceKey(KIND_JOIN_TOKEN, token_id)


def create_join_token(
    store: Store,
    token_id: str,
    secret: str,
    region: str,
    facts: RegionSpec,
    expires_at: float | None,
    now: float,
) -> StoredJoinToken:
    """Store a new token (the hash of `secret` only). The caller validated region and facts
    and minted id and secret; JoinTokenExistsError when the id is taken."""
    with store.changing() as (conn, changes):
        taken = conn.execute("SELECT 1 FROM join_tokens WHERE token_id = ?", (token_id,)).fetchone()
        if taken:
            raise JoinTokenExistsError(f"join token '{token_id}' already exists")
        conn.execute(
            "INSERT INTO join_tokens (token_id, secret_hash, region, facts, expires_at, "
            "created_at, revoked_at, last_used_at, uses) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, 0)",
            (
                token_id,
                secret_hash(secret),
                region,
                json_format.MessageToJson(facts, preserving_proto_field_name=True, indent=None),
                expires_at,
                now,
            ),
        )
        changes.append(Change(_key(token_id), CREATED))
        return _read(conn, token_id)


def get_join_token(store: Store, token_id: str) -> StoredJoinToken:
    """One token; JoinTokenNotFoundError when there is none with that id."""
    with store.companion() as conn:
        return _read(conn, token_id)


def list_join_tokens(store: Store, region: str = "") -> list[StoredJoinToken]:
    """Every token (or those of `region`), newest first."""
    with store.companion() as conn:
        if region:
            rows = conn.execute(
                "SELECT token_id FROM join_tokens WHERE region = ? "
                "ORDER BY created_at DESC, token_id",
                (region,),
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT token_id FROM join_tokens ORDER BY created_at DESC, token_id"
            ).fetchall()
        return [_read(conn, row["token_id"]) for row in rows]


def revoke_join_token(store: Store, token_id: str, now: float) -> StoredJoinToken:
    """Stop a token. Revoking a revoked token changes nothing (its first revocation stays)."""
    with store.changing() as (conn, changes):
        token = _read(conn, token_id)
        if token.revoked_at is not None:
            return token
        conn.execute("UPDATE join_tokens SET revoked_at = ? WHERE token_id = ?", (now, token_id))
        changes.append(Change(_key(token_id), CONFIGURED))
        return _read(conn, token_id)


def verify_join_token(store: Store, token_id: str, secret: str, now: float) -> StoredJoinToken:
    """The token `secret` opens at `now`; JoinTokenRefusedError naming why not."""
    with store.companion() as conn:
        token, stored_hash = _read_with_hash(conn, token_id)
    if refused := refusal_of(token, stored_hash, secret, token_id, now):
        raise refused
    assert token is not None
    return token


@dataclass(frozen=True)
class RecordedJoin:
    """What a join stored: the token with its use counted, and whether the region was
    registered by it (False: it existed, applied or registered before)."""

    token: StoredJoinToken
    registered: bool


def record_join(
    store: Store,
    token_id: str,
    secret: str,
    certificate: RegionCertificate,
    now: float,
    region_spec: RegionSpec | None = None,
) -> RecordedJoin:
    """One join, all or nothing in one transaction that checks the token again (revoked in
    between: JoinTokenRefusedError, nothing kept): the region registered with `region_spec`
    unless it exists (validated by the caller; None: not registered), one use counted, and
    the certificate made the region's certificate of record (replacing any earlier agent's).
    A new region reaches the change feed; the rest is status."""
    with store.changing() as (conn, changes):
        token, stored_hash = _read_with_hash(conn, token_id)
        if refused := refusal_of(token, stored_hash, secret, token_id, now):
            raise refused
        registered = region_spec is not None and add_region_if_absent(
            conn, certificate.region, region_spec
        )
        if registered:
            changes.append(Change(ResourceKey(KIND_REGION, certificate.region), CREATED))
        conn.execute(
            "UPDATE join_tokens SET last_used_at = ?, uses = uses + 1 WHERE token_id = ?",
            (now, token_id),
        )
        write_certificate(conn, certificate)
        return RecordedJoin(_read(conn, token_id), registered)


def to_join_token(token: StoredJoinToken, now: float) -> JoinToken:
    """The API's view of a token at `now`."""
    message = JoinToken()
    message.metadata.name = token.token_id
    message.metadata.created_at = rfc3339(token.created_at)
    message.metadata.updated_at = rfc3339(
        max(t for t in (token.created_at, token.revoked_at, token.last_used_at) if t is not None)
    )
    message.metadata.generation = 1  # what a token allows never changes
    message.spec.region = token.region
    message.spec.facts.CopyFrom(token.facts)
    if token.expires_at is not None:
        message.spec.expires_at = rfc3339(token.expires_at)
    status = message.status
    status.phase = token.phase(now)
    status.created_at = rfc3339(token.created_at)
    if token.revoked_at is not None:
        status.revoked_at = rfc3339(token.revoked_at)
    if token.last_used_at is not None:
        status.last_used_at = rfc3339(token.last_used_at)
    status.uses = token.uses
    return message


def _read_with_hash(conn: sqlite3.Connection, token_id: str) -> tuple[StoredJoinToken | None, str]:
    row = conn.execute("SELECT * FROM join_tokens WHERE token_id = ?", (token_id,)).fetchone()
    if row is None:
        return None, ""
    return _from_row(row), row["secret_hash"]


def _read(conn: sqlite3.Connection, token_id: str) -> StoredJoinToken:
    token, _ = _read_with_hash(conn, token_id)
    if token is None:
        raise JoinTokenNotFoundError(token_id)
    return token


def _from_row(row: sqlite3.Row) -> StoredJoinToken:
    facts = json_format.Parse(row["facts"], RegionSpec())
    return StoredJoinToken(
        token_id=row["token_id"],
        region=row["region"],
        facts=facts,
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
        uses=row["uses"],
    )
