"""Authenticator: API-key secrets of this control plane (a real store) and an identity
provider's JWTs (RS256, ES256, EdDSA; JWKS from a file and from a real loopback URL)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.api.authn import AuthenticationError, Authenticator, bearer_token
from controlplane.api.authz import Grant, PrincipalKind, Role
from controlplane.api.key_tokens import KeyClaims, mint_key
from controlplane.api.oidc import OidcProvider, OidcSettings, grants_from_claim
from controlplane.store import Store
from controlplane.store.keys import KeyScope, create_key, revoke_key, rotate_key
from tests.controlplane.translate.identity_provider import SigningKey, serving_jwks

T0 = 1_800_000_000.0
ISSUER = "https://idp.example.test"
AUDIENCE = "meshline-api"


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store.db") as s:
        yield s


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_key(
    store: Store,
    name: str,
    environment: str = "",
    roles: tuple[str, ...] = ("viewer",),
    expires_at: int | None = None,
    now: float = T0,
) -> str:
    minted = mint_key(KeyClaims(name, int(now), expires_at, environment, (), roles))
    scope = KeyScope(environment, (), roles)
    create_key(store, name, scope, expires_at, minted.key_id, minted.public_key, now)
    return minted.secret


async def refused(auth: Authenticator, token: str | None) -> str:
    with pytest.raises(AuthenticationError) as caught:
        await auth.authenticate(None if token is None else f"Bearer {token}")
    message = str(caught.value)
    if token:
        assert token not in message  # never echoed
    return message


# --- API keys ----------------------------------------------------------------------------


async def test_a_working_key_is_its_principal_with_the_grants_of_its_roles(store: Store) -> None:
    secret = make_key(store, "ci", "staging", ("deployer", "reader"))
    auth = Authenticator(store, clock=Clock())
    principal = await auth.authenticate(f"Bearer {secret}")
    assert principal.name == "ci"
    assert principal.kind is PrincipalKind.KEY
    assert principal.grants == (Grant(Role.DEPLOYER, "staging"),)
    assert (await auth.authenticate(f"bearer   {secret}  ")).name == "ci"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "no credential: send 'authorization: Bearer <token>'"),
        ("", "no credential"),
        ("Basic dXNlcjpwYXNz", "malformed authorization header: expected 'Bearer <token>'"),
        ("Bearer", "malformed authorization header"),
        ("Bearer abc", "malformed token: a JWT has 3 dot-separated parts, this has 1"),
        ("Bearer a.b.c", "malformed token: its parts are not base64url-encoded JSON"),
    ],
)
async def test_missing_and_malformed_credentials_say_which(
    store: Store, header: str | None, message: str
) -> None:
    auth = Authenticator(store, clock=Clock())
    with pytest.raises(AuthenticationError, match="^.*" + message.replace("(", r"\(")) as caught:
        await auth.authenticate(header)
    assert message in str(caught.value)
    assert bearer_token("Bearer x.y.z") == "x.y.z"


async def test_expired_revoked_and_unknown_keys_are_refused(store: Store) -> None:
    clock = Clock()
    auth = Authenticator(store, clock=clock)
    short = make_key(store, "short", expires_at=int(T0) + 60)
    gone = make_key(store, "gone")
    assert (await auth.authenticate(f"Bearer {short}")).expires_at == T0 + 60
    revoke_key(store, "gone", T0 + 1)
    assert "API key 'gone' was revoked at" in await refused(auth, gone)
    clock.now = T0 + 61
    assert "API key 'short' expired at" in await refused(auth, short)
    # a secret this store never had (same name, another control plane)
    with Store.open(store.path.with_name("other.db")) as other:
        foreign = make_key(other, "short")
    assert "unknown API key" in await refused(auth, foreign)


async def test_a_rotated_secret_works_within_its_grace_only(store: Store) -> None:
    clock = Clock()
    auth = Authenticator(store, clock=clock)
    old = make_key(store, "ci")
    minted = mint_key(KeyClaims("ci", int(T0), None, "", (), ("viewer",)))
    rotate_key(store, "ci", minted.key_id, minted.public_key, 30.0, T0)
    assert (await auth.authenticate(f"Bearer {old}")).name == "ci"
    assert (await auth.authenticate(f"Bearer {minted.secret}")).name == "ci"
    clock.now = T0 + 31
    assert "was rotated; it stopped working at" in await refused(auth, old)
    assert (await auth.authenticate(f"Bearer {minted.secret}")).name == "ci"
    # a second rotation drops the first secret altogether
    third = mint_key(KeyClaims("ci", int(T0), None, "", (), ("viewer",)))
    rotate_key(store, "ci", third.key_id, third.public_key, 0.0, clock.now)
    assert "unknown API key" in await refused(auth, old)
    assert "was rotated" in await refused(auth, minted.secret)


async def test_a_forged_signature_or_alg_none_is_refused(store: Store) -> None:
    auth = Authenticator(store, clock=Clock())
    secret = make_key(store, "ci", roles=("viewer",))
    header, payload, signature = secret.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["admin"]
    forged_payload = _b64(json.dumps(claims).encode())
    assert "bad signature" in await refused(auth, f"{header}.{forged_payload}.{signature}")
    # the key id of a working key, signed by someone else's key
    kid = json.loads(base64.urlsafe_b64decode(header + "=="))["kid"]
    impostor = mint_key(KeyClaims("ci", int(T0)), key_id=kid)
    assert "bad signature" in await refused(auth, impostor.secret)
    unsigned = _b64(json.dumps({"alg": "none", "kid": kid}).encode())
    assert "alg none" in await refused(auth, f"{unsigned}.{payload}.")


async def test_a_key_change_is_seen_at_once(store: Store) -> None:
    """The index of keys is per store revision: revoking needs no cache expiry."""
    auth = Authenticator(store, clock=Clock())
    secret = make_key(store, "ci")
    await auth.authenticate(f"Bearer {secret}")
    revoke_key(store, "ci", T0)
    assert "revoked" in await refused(auth, secret)


# --- an identity provider ------------------------------------------------------------------


def _sign_es256(private: ec.EllipticCurvePrivateKey, kid: str, claims: Mapping[str, object]) -> str:
    header = _b64(json.dumps({"alg": "ES256", "kid": kid, "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    der = private.sign(f"{header}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der)
    return f"{header}.{body}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _sign_eddsa(private: Ed25519PrivateKey, kid: str, claims: Mapping[str, object]) -> str:
    header = _b64(json.dumps({"alg": "EdDSA", "kid": kid, "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{header}.{body}.{_b64(private.sign(f'{header}.{body}'.encode()))}"


def _ec_jwk(private: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, str]:
    numbers = private.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "kid": kid,
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }


def _ed_jwk(private: Ed25519PrivateKey, kid: str) -> dict[str, str]:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": _b64(raw)}


def claims(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": int(T0),
        "exp": int(T0) + 3600,
        "meshline_roles": ["deployer:staging", "viewer", "other-app-role"],
    }
    base.update(extra)
    return base


@pytest.fixture
def rsa_key() -> SigningKey:
    return SigningKey.generate("rsa-1")


@pytest.fixture
def jwks_file(tmp_path: Path, rsa_key: SigningKey) -> Path:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = Ed25519PrivateKey.generate()
    path = tmp_path / "jwks.json"
    path.write_text(
        json.dumps({"keys": [rsa_key.jwk(), _ec_jwk(ec_key, "ec-1"), _ed_jwk(ed_key, "ed-1")]})
    )
    _KEYS[path] = (ec_key, ed_key)
    return path


_KEYS: dict[Path, tuple[ec.EllipticCurvePrivateKey, Ed25519PrivateKey]] = {}


def _provider(
    store: Store, jwks_file: Path | None = None, uri: str = "", clock: Clock | None = None
) -> Authenticator:
    settings = OidcSettings(ISSUER, AUDIENCE, jwks_file=jwks_file, jwks_uri=uri)
    clock = clock or Clock()
    return Authenticator(store, OidcProvider(settings, clock=clock), clock=clock)


async def test_identity_provider_tokens_of_each_algorithm(
    store: Store, rsa_key: SigningKey, jwks_file: Path
) -> None:
    auth = _provider(store, jwks_file)
    ec_key, ed_key = _KEYS[jwks_file]
    for token in (
        rsa_key.sign(claims()),
        _sign_es256(ec_key, "ec-1", claims()),
        _sign_eddsa(ed_key, "ed-1", claims()),
    ):
        principal = await auth.authenticate(f"Bearer {token}")
        assert principal.name == f"jwt:{ISSUER}#alice"
        assert principal.kind is PrincipalKind.JWT
        assert principal.grants == (Grant(Role.DEPLOYER, "staging"), Grant(Role.VIEWER, ""))
        assert principal.expires_at == T0 + 3600


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        ({"aud": "another-api"}, "the token is not for audience 'meshline-api'"),
        ({"aud": ["x", "y"]}, "not for audience"),
        ({"exp": int(T0) - 120}, "the token expired at"),
        ({"exp": None}, "the token has no exp claim"),
        ({"nbf": int(T0) + 3000}, "the token is not valid before"),
        ({"sub": ""}, "the token has no sub claim"),
        ({"iss": "https://evil.example.test"}, "tokens of issuer 'https://evil.example.test'"),
    ],
)
async def test_identity_provider_tokens_refused(
    store: Store, rsa_key: SigningKey, jwks_file: Path, changed: dict[str, object], message: str
) -> None:
    auth = _provider(store, jwks_file)
    body = {k: v for k, v in claims(**changed).items() if v is not None}
    assert message in await refused(auth, rsa_key.sign(body))


async def test_identity_provider_alg_none_and_wrong_key(
    store: Store, rsa_key: SigningKey, jwks_file: Path
) -> None:
    auth = _provider(store, jwks_file)
    body = _b64(json.dumps(claims()).encode())
    none = _b64(json.dumps({"alg": "none", "kid": "rsa-1"}).encode())
    assert "alg none" in await refused(auth, f"{none}.{body}.")
    hs = _b64(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode())
    assert "algorithm 'HS256' is not accepted" in await refused(auth, f"{hs}.{body}.c2ln")
    stranger = SigningKey.generate("rsa-1")  # the provider's key id, another key
    assert "bad signature" in await refused(auth, stranger.sign(claims()))


async def test_a_jwks_url_is_fetched_and_refetched_for_a_new_key_id(store: Store) -> None:
    first = SigningKey.generate("k1")
    second = SigningKey.generate("k2")
    with serving_jwks([first]) as server:
        clock = Clock()
        auth = _provider(store, uri=server.uri, clock=clock)
        assert auth.oidc is not None
        await auth.oidc.refresh()
        assert (await auth.authenticate(f"Bearer {first.sign(claims())}")).name.endswith("alice")
        fetched = server.fetches
        server.publish([first, second])  # the provider rotates in a new key
        clock.now += 31  # past the least time between two fetches
        assert (await auth.authenticate(f"Bearer {second.sign(claims())}")).grants
        assert server.fetches == fetched + 1
        # an unknown key id right after a refetch does not fetch again (bounded refetching)
        unknown = SigningKey.generate("k3")
        assert "no key of the identity provider has key id 'k3'" in await refused(
            auth, unknown.sign(claims())
        )
        assert server.fetches == fetched + 1


@pytest.mark.parametrize(
    ("value", "grants"),
    [
        (["admin"], (Grant(Role.ADMIN),)),
        ("viewer deployer:prod", (Grant(Role.VIEWER), Grant(Role.DEPLOYER, "prod"))),
        (["viewer:", "owner", 3, "deployer:staging"], (Grant(Role.DEPLOYER, "staging"),)),
        ("admin,viewer:x", (Grant(Role.ADMIN), Grant(Role.VIEWER, "x"))),
        (None, ()),
        ({"admin": True}, ()),
    ],
)
def test_grants_from_the_roles_claim(value: object, grants: tuple[Grant, ...]) -> None:
    assert grants_from_claim(value) == grants
