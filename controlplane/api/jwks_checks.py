"""What is wrong with an inline JWKS or a JWKS URL, before it reaches a gateway.

Envoy parses an inline JWKS when it loads the listener and rejects the whole listener update
when it cannot ("Provider ... has invalid local jwks"): one bad key in one deployment would
leave every deployment of the region on its old config. So each key is checked the way Envoy's
JWT library reads it: a supported `kty` with its members, an `alg` that fits it, and members
that really make a public key (an RSA modulus, a point on the named curve, a 32-byte Ed25519
key), built with `cryptography`.

Messages name a key by its index and member and never echo the document: a JWKS is long, and
a mistaken one may hold a private or symmetric key.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

KEY_TYPES: tuple[str, ...] = ("RSA", "EC", "OKP")
EC_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}
OKP_CURVES: tuple[str, ...] = ("Ed25519",)
# The `alg` each key type may name (Envoy refuses a key whose alg does not fit its type).
RSA_ALGS: tuple[str, ...] = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGS: dict[str, str] = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
OKP_ALGS: tuple[str, ...] = ("EdDSA",)
# Members that only a private key has: publishing them would hand out the signing key.
PRIVATE_MEMBERS: tuple[str, ...] = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


def jwks_problems(text: str) -> list[str]:
    """Every problem of an inline JWKS document (empty when gateways can use it)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        return [
            f"is not valid JSON (line {error.lineno} column {error.colno}: {error.msg}); "
            'expected a JWKS: {"keys": [...]}'
        ]
    if not isinstance(doc, dict):
        return [f'is a JSON {_json_type(doc)}, not a JWKS object: {{"keys": [...]}}']
    keys = doc.get("keys")
    if not isinstance(keys, list) or not keys:
        got = "missing" if keys is None else f"a JSON {_json_type(keys)}"
        if isinstance(keys, list):
            got = "empty"
        return [f'needs a non-empty "keys" list (a JWKS), "keys" is {got}']
    problems: list[str] = []
    for i, key in enumerate(keys):
        if not isinstance(key, dict):
            problems.append(f"keys[{i}] is a JSON {_json_type(key)}, not a JWK object")
            continue
        problems.extend(f"keys[{i}]{problem}" for problem in _key_problems(key))
    return problems


def _key_problems(key: Mapping[str, object]) -> list[str]:
    kty = key.get("kty")
    private = [m for m in PRIVATE_MEMBERS if m in key]
    if kty == "oct" or (private and kty in KEY_TYPES):
        what = (
            "a symmetric key (kty oct)"
            if kty == "oct"
            else f"private members ({', '.join(private)})"
        )
        return [
            f" holds {what}: a JWKS lists public keys only; a secret in it would be copied "
            "into every gateway's config"
        ]
    if not isinstance(kty, str) or kty not in KEY_TYPES:
        got = "missing" if kty is None else f"'{kty}'" if isinstance(kty, str) else "not a string"
        return [f".kty is {got} (expected one of {', '.join(KEY_TYPES)})"]
    for name in ("kid", "alg", "use"):
        if name in key and not isinstance(key[name], str):
            return [f".{name} must be a string"]
    checks: dict[str, Callable[[Mapping[str, object]], list[str]]] = {
        "RSA": _rsa_problems,
        "EC": _ec_problems,
        "OKP": _okp_problems,
    }
    return checks[kty](key)


def _members(key: Mapping[str, object], names: tuple[str, ...]) -> tuple[list[bytes], list[str]]:
    """The base64url-decoded members, or the problems of the missing or malformed ones."""
    values: list[bytes] = []
    problems: list[str] = []
    for name in names:
        value = key.get(name)
        if not isinstance(value, str) or not value:
            problems.append(f".{name} is required ({key.get('kty')} key; base64url)")
        elif not _BASE64URL.match(value):
            problems.append(f".{name} is not base64url (letters, digits, '-', '_')")
        else:
            try:
                values.append(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
            except (binascii.Error, ValueError):
                problems.append(f".{name} is not base64url (letters, digits, '-', '_')")
    return values, problems


def _rsa_problems(key: Mapping[str, object]) -> list[str]:
    alg = key.get("alg")
    if alg is not None and alg not in RSA_ALGS:
        return [f".alg '{alg}' does not fit an RSA key (expected one of {', '.join(RSA_ALGS)})"]
    values, problems = _members(key, ("n", "e"))
    if problems:
        return problems
    n, e = (int.from_bytes(v, "big") for v in values)
    try:
        rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError:
        return [".n and .e do not make an RSA public key"]
    return []


def _ec_problems(key: Mapping[str, object]) -> list[str]:
    crv = key.get("crv")
    if not isinstance(crv, str) or crv not in EC_CURVES:
        got = "missing" if crv is None else f"'{crv}'"
        return [f".crv is {got} (expected one of {', '.join(EC_CURVES)})"]
    alg = key.get("alg")
    if alg is not None and EC_ALGS.get(str(alg)) != crv:
        fits = next(a for a, c in EC_ALGS.items() if c == crv)
        return [f".alg '{alg}' does not fit curve {crv} (expected {fits})"]
    values, problems = _members(key, ("x", "y"))
    if problems:
        return problems
    x, y = (int.from_bytes(v, "big") for v in values)
    try:
        ec.EllipticCurvePublicNumbers(x, y, EC_CURVES[crv]).public_key()
    except ValueError:
        return [f".x and .y are not a point on curve {crv}"]
    return []


def _okp_problems(key: Mapping[str, object]) -> list[str]:
    crv = key.get("crv")
    if crv not in OKP_CURVES:
        got = "missing" if crv is None else f"'{crv}'"
        return [f".crv is {got} (expected {', '.join(OKP_CURVES)})"]
    alg = key.get("alg")
    if alg is not None and alg not in OKP_ALGS:
        return [f".alg '{alg}' does not fit an Ed25519 key (expected {', '.join(OKP_ALGS)})"]
    values, problems = _members(key, ("x",))
    if problems:
        return problems
    try:
        Ed25519PublicKey.from_public_bytes(values[0])
    except ValueError:
        return [f".x is {len(values[0])} bytes, not a 32-byte Ed25519 public key"]
    return []


def _json_type(value: object) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def jwks_uri_problem(uri: str) -> str | None:
    """None for an http(s) URL with a host (and a port in 1..65535), no userinfo and no
    fragment; else what is wrong. A URL with userinfo is not echoed: it may hold a password."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "is not a URL (e.g. https://sso.example.com/.well-known/jwks.json)"
    if "@" in parts.netloc:
        return (
            "has userinfo (user:password@): gateways fetch the keys without credentials, and a "
            "password must not sit in a policy"
        )
    if any(c.isspace() or not c.isprintable() for c in uri):
        return f"{uri!r} contains whitespace or control characters"
    if parts.scheme not in ("http", "https"):
        return f"'{uri}' is not an http or https URL"
    if not parts.hostname:
        return f"'{uri}' has no host"
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        return f"'{uri}' has a port that is not a number in 1..65535"
    if "#" in uri:
        return f"'{uri}' has a fragment (#...): a JWKS URL names a document, not a part of one"
    return None


def loopback_host(host: str | None) -> bool:
    """`localhost`, or an address of 127.0.0.0/8 or ::1."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def oidc_jwks_uri_problem(uri: str) -> str | None:
    """What is wrong with the JWKS URL of the management API's identity provider
    (`--oidc-jwks-uri`): as jwks_uri_problem, and https unless its host is loopback. Its keys
    decide who is admin of the whole mesh, so they never travel where a network can swap them."""
    if problem := jwks_uri_problem(uri):
        return problem
    parts = urlsplit(uri)
    if parts.scheme != "https" and not loopback_host(parts.hostname):
        return (
            f"'{uri}' is not https: the identity provider's keys decide who may manage the mesh, "
            "so the control plane fetches them over https only (http only from a loopback host: "
            "localhost, 127.0.0.1, ::1)"
        )
    return None


def redirect_problem(from_uri: str, to_uri: str) -> str | None:
    """Why the control plane does not follow a redirect of its JWKS URL: from https to
    anything but https, or to a URL it would not take as `--oidc-jwks-uri`."""
    if urlsplit(from_uri).scheme == "https" and urlsplit(to_uri).scheme != "https":
        return f"{from_uri} redirects to {to_uri}: from https to plain http"
    if problem := oidc_jwks_uri_problem(to_uri):
        return f"{from_uri} redirects to a URL that {problem}"
    return None
