"""Verifying a compact JWS (a JWT) with `cryptography`: parse, pick the key, check the signature
and the times. Pure: keys and the clock come in as arguments.

Every error is a TokenError whose message says what is wrong (malformed, which algorithm, bad
signature, expired when) and never repeats the token: a refused token may still be someone's
working secret.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controlplane.api.jwks_checks import EC_ALGS, EC_CURVES, OKP_ALGS, RSA_ALGS
from meshline.times import rfc3339_of_epoch

# How far a clock may be off when checking `exp` and `nbf` of an identity provider's token.
LEEWAY_S = 60.0

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
SUPPORTED_ALGS: tuple[str, ...] = (*RSA_ALGS, *EC_ALGS, *OKP_ALGS)
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | Ed25519PublicKey


class TokenError(ValueError):
    """Why a token is refused, in words that name no part of it."""


@dataclass(frozen=True)
class ParsedToken:
    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header.get("alg", ""))

    @property
    def kid(self) -> str:
        kid = self.header.get("kid", "")
        return kid if isinstance(kid, str) else ""


@dataclass(frozen=True)
class VerifyKey:
    """One public key and the algorithms it may verify."""

    key: PublicKey
    algs: tuple[str, ...]
    kid: str = ""


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_token(token: str) -> ParsedToken:
    """The header, claims and signature of a compact JWS; TokenError when it is none."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError(f"malformed token: a JWT has 3 dot-separated parts, this has {len(parts)}")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise TokenError("malformed token: its parts are not base64url-encoded JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("malformed token: its header and claims must be JSON objects")
    return ParsedToken(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def check_alg(parsed: ParsedToken) -> str:
    """The token's algorithm when it is one we verify ("none" and shared secrets never are)."""
    alg = parsed.alg
    if alg.lower() == "none":
        raise TokenError("unsigned token (alg none) refused")
    if alg not in SUPPORTED_ALGS:
        raise TokenError(
            f"token algorithm {alg!r} is not accepted (accepted: {', '.join(SUPPORTED_ALGS)})"
        )
    return alg


def verify_signature(parsed: ParsedToken, key: VerifyKey) -> None:
    """TokenError unless `key` made the token's signature with the token's algorithm."""
    alg = check_alg(parsed)
    if alg not in key.algs:
        raise TokenError(f"token algorithm {alg} does not fit its key (kid {parsed.kid!r})")
    try:
        _verify(key.key, alg, parsed.signature, parsed.signing_input)
    except (InvalidSignature, ValueError):
        raise TokenError("bad signature: the token was not signed by a trusted key") from None


def _verify(key: PublicKey, alg: str, signature: bytes, data: bytes) -> None:
    if isinstance(key, Ed25519PublicKey):
        key.verify(signature, data)
        return
    digest = _HASHES[alg[2:]]()
    if isinstance(key, rsa.RSAPublicKey):
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if alg.startswith("RS")
            else padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        )
        key.verify(signature, data, pad, digest)
        return
    # JWS ECDSA signatures are r || s, each the curve's size; cryptography takes DER.
    size = (key.curve.key_size + 7) // 8
    if len(signature) != 2 * size:
        raise InvalidSignature()
    r = int.from_bytes(signature[:size], "big")
    s = int.from_bytes(signature[size:], "big")
    key.verify(utils.encode_dss_signature(r, s), data, ec.ECDSA(digest))


def key_from_jwk(jwk: Mapping[str, Any]) -> VerifyKey:
    """The public key of one JWK (RSA, EC P-256/384/521, OKP Ed25519); ValueError otherwise."""
    kty = jwk.get("kty")
    alg = jwk.get("alg")
    kid = str(jwk.get("kid", ""))
    if kty == "RSA":
        n = int.from_bytes(b64url_decode(str(jwk["n"])), "big")
        e = int.from_bytes(b64url_decode(str(jwk["e"])), "big")
        algs: tuple[str, ...] = RSA_ALGS
        key: PublicKey = rsa.RSAPublicNumbers(e, n).public_key()
    elif kty == "EC":
        crv = str(jwk.get("crv"))
        if crv not in EC_CURVES:
            raise ValueError(f"EC curve {crv!r} is not supported")
        x = int.from_bytes(b64url_decode(str(jwk["x"])), "big")
        y = int.from_bytes(b64url_decode(str(jwk["y"])), "big")
        key = ec.EllipticCurvePublicNumbers(x, y, EC_CURVES[crv]).public_key()
        algs = tuple(a for a, c in EC_ALGS.items() if c == crv)
    elif kty == "OKP" and jwk.get("crv") == "Ed25519":
        key = Ed25519PublicKey.from_public_bytes(b64url_decode(str(jwk["x"])))
        algs = OKP_ALGS
    else:
        raise ValueError(f"key type {kty!r} is not supported")
    if isinstance(alg, str) and alg:
        if alg not in algs:
            raise ValueError(f"alg {alg!r} does not fit key type {kty}")
        algs = (alg,)
    return VerifyKey(key, algs, kid)


def keys_from_jwks(text: str) -> tuple[VerifyKey, ...]:
    """Every usable signing key of a JWKS document (keys meant for encryption are skipped);
    ValueError when the document is no JWKS or holds no usable key."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError('not a JWKS: expected {"keys": [...]}')
    keys = []
    for jwk in doc["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        try:
            keys.append(key_from_jwk(jwk))
        except (KeyError, ValueError, TypeError):
            continue
    if not keys:
        raise ValueError("the JWKS holds no usable signing key")
    return tuple(keys)


def _time(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(f"malformed token: claim {name!r} is not a number")
    return float(value)


def check_times(
    claims: Mapping[str, Any], now: float, leeway_s: float = 0.0, require_exp: bool = False
) -> float | None:
    """TokenError when the token expired or is not valid yet; its expiry (epoch s) if any."""
    exp = _time(claims, "exp")
    if exp is None and require_exp:
        raise TokenError("the token has no exp claim: tokens of an identity provider must expire")
    if exp is not None and now >= exp + leeway_s:
        raise TokenError(f"the token expired at {rfc3339_of_epoch(exp)}")
    nbf = _time(claims, "nbf")
    if nbf is not None and now + leeway_s < nbf:
        raise TokenError(f"the token is not valid before {rfc3339_of_epoch(nbf)}")
    return exp
