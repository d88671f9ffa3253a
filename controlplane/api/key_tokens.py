"""Minting API-key secrets: an Ed25519-signed JWT per secret, by a key pair made for it alone.

The private key signs once and is dropped with the function's frame; what leaves here is the
secret (for the user, once) and the public key (for the store and the gateways' JWKS). The
secret is a plain compact JWS, so `authorization: Bearer <secret>` works with Envoy's
jwt_authn as it is.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from meshline import jwk
from meshline.jwk import JWT_ALGORITHM, public_jwk
from meshline.wire import MESHLINE_ISSUER

__all__ = [
    "KeyClaims",
    "MintedKey",
    "b64url",
    "claims_payload",
    "mint_key",
    "new_key_id",
    "public_jwk",
]


@dataclass(frozen=True)
class KeyClaims:
    """What a key's token says: whose it is, when it was issued, what it may call."""

    name: str
    issued_at: int  # epoch seconds
    expires_at: int | None = None  # epoch seconds; None = never
    environment: str = ""
    deployments: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class MintedKey:
    """A fresh secret and the public half of its key pair. `secret` is shown to the user
    once and is never stored nor logged (it is kept out of repr)."""

    key_id: str
    public_key: str  # base64url (no padding) of the raw 32-byte Ed25519 public key
    secret: str = field(repr=False)


def b64url(data: bytes) -> str:
    """Base64url without padding (JWS, JWK)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_key_id() -> str:
    """A random, practically unique key id (the token's `kid` and `jti`)."""
    return secrets.token_hex(16)


def claims_payload(claims: KeyClaims, key_id: str) -> dict[str, object]:
    """The JWT payload: scope claims only when set, `exp` only when the key expires."""
    payload: dict[str, object] = {
        "iss": MESHLINE_ISSUER,
        jwk.SUBJECT_CLAIM: claims.name,
        "jti": key_id,
        "iat": claims.issued_at,
    }
    if claims.expires_at is not None:
        payload["exp"] = claims.expires_at
    if claims.environment:
        payload[jwk.ENVIRONMENT_CLAIM] = claims.environment
    if claims.deployments:
        payload[jwk.DEPLOYMENTS_CLAIM] = list(claims.deployments)
    if claims.roles:
        payload[jwk.ROLES_CLAIM] = list(claims.roles)
    return payload


def _segment(value: Mapping[str, object]) -> str:
    # Deterministic JSON: the same claims always make the same bytes to sign.
    return b64url(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())


def mint_key(
    claims: KeyClaims, key_id: str | None = None, private_key: Ed25519PrivateKey | None = None
) -> MintedKey:
    """A new secret for `claims`, signed by a key pair made for it; its private key is
    discarded before this returns. (`key_id` and `private_key` are for tests that must know
    them, e.g. to look for the private key where it must not be.)"""
    kid = key_id or new_key_id()
    header = {"alg": JWT_ALGORITHM, "typ": "JWT", "kid": kid}
    signing_input = f"{_segment(header)}.{_segment(claims_payload(claims, kid))}"
    private = private_key or Ed25519PrivateKey.generate()
    signature = private.sign(signing_input.encode("ascii"))
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return MintedKey(kid, b64url(public), f"{signing_input}.{b64url(signature)}")
