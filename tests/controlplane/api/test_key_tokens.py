"""Minted API-key secrets verify with the public key alone and say exactly what they should."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controlplane.api.key_tokens import KeyClaims, mint_key, public_jwk


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _verify(secret: str, public_key_b64: str) -> tuple[dict[str, object], dict[str, object]]:
    """(header, payload) of a secret whose signature the public key accepts."""
    header, payload, signature = secret.split(".")
    public = Ed25519PublicKey.from_public_bytes(_unb64(public_key_b64))
    public.verify(_unb64(signature), f"{header}.{payload}".encode())
    return json.loads(_unb64(header)), json.loads(_unb64(payload))


def test_a_secret_verifies_with_its_stored_public_key_and_no_other() -> None:
    minted = mint_key(KeyClaims("demo", 1_700_000_000))
    other = mint_key(KeyClaims("demo", 1_700_000_000))
    assert len(_unb64(minted.public_key)) == 32 and "=" not in minted.public_key
    header, payload = _verify(minted.secret, minted.public_key)
    assert header == {"alg": "EdDSA", "typ": "JWT", "kid": minted.key_id}
    assert payload == {"iss": "meshline", "sub": "demo", "jti": minted.key_id, "iat": 1_700_000_000}
    with pytest.raises(InvalidSignature):
        _verify(minted.secret, other.public_key)
    assert minted.key_id != other.key_id and len(minted.key_id) == 32
    assert minted.secret not in repr(minted)  # a logged MintedKey shows no secret


def test_every_claim_when_set() -> None:
    claims = KeyClaims("ci", 100, 200, "production", ("a", "b"), ("reader",))
    minted = mint_key(claims, key_id="k1")
    _, payload = _verify(minted.secret, minted.public_key)
    assert payload == {
        "iss": "meshline",
        "sub": "ci",
        "jti": "k1",
        "iat": 100,
        "exp": 200,
        "env": "production",
        "deployments": ["a", "b"],
        "roles": ["reader"],
    }


def test_segments_are_deterministic_json() -> None:
    minted = mint_key(KeyClaims("ci", 100, roles=("r",)), key_id="k1")
    header, payload, _ = minted.secret.split(".")
    assert _unb64(header) == b'{"alg":"EdDSA","kid":"k1","typ":"JWT"}'
    assert _unb64(payload) == b'{"iat":100,"iss":"meshline","jti":"k1","roles":["r"],"sub":"ci"}'


def test_a_tampered_payload_does_not_verify() -> None:
    minted = mint_key(KeyClaims("ci", 100, environment="development"), key_id="k1")
    header, _, signature = minted.secret.split(".")
    forged = base64.urlsafe_b64encode(b'{"env":"production","sub":"ci"}').rstrip(b"=").decode()
    with pytest.raises(InvalidSignature):
        _verify(f"{header}.{forged}.{signature}", minted.public_key)


def test_public_jwk() -> None:
    assert public_jwk("AAAA", "k1") == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": "AAAA",
        "kid": "k1",
        "alg": "EdDSA",
        "use": "sig",
    }
