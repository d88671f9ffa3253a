"""Who is calling the management API: `authorization: Bearer <token>` to a Principal.

Two kinds of token: an API key's secret minted by this control plane (iss `meshline`, EdDSA,
verified against the public keys the store keeps for working secrets) and, when one is
configured, an identity provider's JWT (oidc.py). A key's roles are read from the store, not
from its token: the store is the truth (a revoked key stops at once).

The store's keys are indexed once per store revision (every key change bumps it), so a call
costs one signature check, not a query.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controlplane.api.authz import Principal, PrincipalKind, key_grants
from controlplane.api.jwt_verify import (
    ParsedToken,
    TokenError,
    VerifyKey,
    b64url_decode,
    check_times,
    parse_token,
    verify_signature,
)
from controlplane.api.oidc import OidcProvider
from controlplane.store import Store
from controlplane.store.keys import KeyCredential, StoredKey, active_credentials, list_keys
from meshline.jwk import JWT_ALGORITHM
from meshline.times import rfc3339_of_epoch
from meshline.wire import AUTHORIZATION_HEADER, MESHLINE_ISSUER

BEARER = "bearer"


class AuthenticationError(ValueError):
    """Why a call is UNAUTHENTICATED, in words that never repeat the token."""


def bearer_token(authorization: str | None) -> str:
    """The token of an `authorization: Bearer <token>` value; AuthenticationError naming
    what is missing or malformed."""
    if authorization is None or not authorization.strip():
        raise AuthenticationError(
            f"no credential: send '{AUTHORIZATION_HEADER}: Bearer <token>' (an API key with a "
            "management role, or an identity provider's token; `meshline login`)"
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != BEARER or not token.strip():
        raise AuthenticationError(
            f"malformed {AUTHORIZATION_HEADER} header: expected 'Bearer <token>'"
        )
    return token.strip()


@dataclass(frozen=True)
class _KeyIndex:
    """The store's keys at one revision, by name and by every key id they had."""

    revision: int
    working: dict[str, tuple[KeyCredential, VerifyKey]]  # kid -> a secret not revoked
    by_kid: dict[str, StoredKey]  # kid (current or previous) -> its key, revoked ones too


def _index(store: Store) -> _KeyIndex:
    revision = store.revision
    # now=0: every credential of a key not revoked; their ends are checked per call.
    working = {
        c.key_id: (
            c,
            VerifyKey(
                Ed25519PublicKey.from_public_bytes(b64url_decode(c.public_key)),
                (JWT_ALGORITHM,),
                c.key_id,
            ),
        )
        for c in active_credentials(store, 0.0)
    }
    by_kid: dict[str, StoredKey] = {}
    for key in list_keys(store):
        for kid in (key.key_id, key.previous_key_id):
            if kid:
                by_kid[kid] = key
    return _KeyIndex(revision, working, by_kid)


class KeyVerifier:
    """API-key secrets of this control plane."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._index: _KeyIndex | None = None

    def _current(self) -> _KeyIndex:
        if self._index is None or self._index.revision != self._store.revision:
            self._index = _index(self._store)
        return self._index

    def principal(self, parsed: ParsedToken, now: float) -> Principal:
        index = self._current()
        kid = parsed.kid
        key = index.by_kid.get(kid)
        found = index.working.get(kid)
        if found is None:
            raise TokenError(_gone(key, kid, now))
        credential, verify_key = found
        verify_signature(parsed, verify_key)
        if parsed.claims.get("sub") != credential.name:
            raise TokenError("the token does not match the API key of its key id")
        until = credential.valid_until
        if until is not None and now >= until:
            raise TokenError(_ended(key, credential, until))
        check_times(parsed.claims, now)
        assert key is not None  # a working credential belongs to a listed key
        return Principal(
            key.name,
            PrincipalKind.KEY,
            key_grants(key.scope.environment, key.scope.roles),
            until,
        )


def _gone(key: StoredKey | None, kid: str, now: float) -> str:
    if key is None:
        return (
            "unknown API key: no key of this control plane has this secret (deleted, replaced "
            "twice, or minted by another control plane)"
        )
    if key.revoked_at is not None:
        return f"API key '{key.name}' was revoked at {rfc3339_of_epoch(key.revoked_at)}"
    if key.expires_at is not None and now >= key.expires_at:
        return f"API key '{key.name}' expired at {rfc3339_of_epoch(key.expires_at)}"
    return f"this secret of API key '{key.name}' was rotated and no longer works"


def _ended(key: StoredKey | None, credential: KeyCredential, until: float) -> str:
    if key is not None and key.expires_at is not None and until >= key.expires_at:
        return f"API key '{credential.name}' expired at {rfc3339_of_epoch(until)}"
    return (
        f"this secret of API key '{credential.name}' was rotated; it stopped working at "
        f"{rfc3339_of_epoch(until)}"
    )


class Authenticator:
    """Bearer token -> Principal, or AuthenticationError saying why not."""

    def __init__(
        self,
        store: Store,
        oidc: OidcProvider | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = KeyVerifier(store)
        self._oidc = oidc
        self._clock = clock

    @property
    def oidc(self) -> OidcProvider | None:
        return self._oidc

    async def authenticate(self, authorization: str | None) -> Principal:
        token = bearer_token(authorization)
        try:
            parsed = parse_token(token)
            issuer = parsed.claims.get("iss")
            if issuer == MESHLINE_ISSUER:
                return self._keys.principal(parsed, self._clock())
            if self._oidc is not None and issuer == self._oidc.settings.issuer:
                return await self._oidc.principal(parsed)
        except TokenError as exc:
            raise AuthenticationError(f"credential refused: {exc}") from None
        trusted = [f"'{MESHLINE_ISSUER}' (API keys)"]
        if self._oidc is not None:
            trusted.append(f"'{self._oidc.settings.issuer}'")
        shown = issuer if isinstance(issuer, str) and len(issuer) <= 200 else "(not shown)"
        raise AuthenticationError(
            f"credential refused: tokens of issuer {shown!r} are not trusted here "
            f"(trusted: {', '.join(trusted)})"
        )
