"""Apply-time checks of the `access` and `rate` policies, through the real apply into a real
store: each bad value is refused with its exact field path, and nothing of the apply is stored.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf.message import Message

from controlplane.api import ApplyError, DocumentError, apply_resources, parse_resource_document
from controlplane.store import Store
from meshline.v1.api_pb2 import Resource
from tests.controlplane.api.policy_world import dep, env, world
from tests.controlplane.store.builders import deployment, policy


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(value: int, length: int) -> str:
    return _b64(value.to_bytes(length, "big"))


_RSA = rsa.generate_private_key(65537, 2048).public_key().public_numbers()
_EC = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
_ED = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
RSA_KEY = {"kty": "RSA", "kid": "r1", "alg": "RS256", "n": _int(_RSA.n, 256), "e": "AQAB"}
EC_KEY = {"kty": "EC", "crv": "P-384", "alg": "ES384", "x": _int(_EC.x, 48), "y": _int(_EC.y, 48)}
OKP_KEY = {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "x": _b64(_ED)}


def jwks(*keys: Any) -> str:
    return json.dumps({"keys": list(keys)})


GOOD_JWKS = jwks(RSA_KEY, EC_KEY, OKP_KEY)
ISSUER = "https://sso.example.com"
URI = "https://sso.example.com/.well-known/jwks.json"


def jwt(**fields: Any) -> dict[str, Any]:
    """A valid jwt rule with `fields` replacing its defaults."""
    rule: dict[str, Any] = {"issuer": ISSUER, "jwks_uri": URI, **fields}
    return {key: value for key, value in rule.items() if value is not None}


def access(**fields: Any) -> dict[str, Any]:
    return {"access": fields}


def rate(**fields: Any) -> dict[str, Any]:
    return {"rate": fields}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with world(tmp_path) as s:
        yield s


def _stored(store: Store) -> list[bytes]:
    snap = store.snapshot()
    objs: list[Message] = [*snap.models, *snap.environments, *snap.deployments, *snap.regions]
    return [obj.SerializeToString(deterministic=True) for obj in objs]


def refused(store: Store, docs: list[Resource]) -> list[tuple[int | None, str]]:
    """(document index, line) of each error of a refused apply; asserts nothing was stored."""
    before = _stored(store)
    with pytest.raises(ApplyError) as caught:
        apply_resources(store, docs)
    assert _stored(store) == before, "a refused apply stored something"
    return [(e.document_index, str(e)) for e in caught.value.errors]


P = "spec.policies[0]"
D = f"deployment 'd': {P}"
E = f"environment 'staging': {P}"
DNS = (
    "is not a DNS-1123 label: use lowercase letters, digits and '-', starting and ending with a "
    "letter or digit"
)
RATE_RANGE = "must be between 0.001 and 1000000 requests per second"
BURST_RANGE = (
    "must be 0 (the default, requests_per_second rounded up) or between 1 and 1000000000 requests"
)
HOPS_RANGE = "must be between 0 (the connecting peer) and 10 trusted proxies"

BAD = [
    # keys and roles
    pytest.param(
        dep(access(keys=["ci", "CI-bot", ""])),
        [f"{D}.access.keys[1]: 'CI-bot' {DNS}", f"{D}.access.keys[2]: must not be empty"],
        id="keys-not-dns-labels",
    ),
    pytest.param(
        dep(access(keys=["ci", "web", "ci"])),
        f"{D}.access.keys[2]: key 'ci' is listed twice (first at {P}.access.keys[0])",
        id="keys-duplicate",
    ),
    pytest.param(
        dep(access(roles=["", "data science", "r" * 64, "ok"])),
        [
            f"{D}.access.roles[0]: a role must not be empty",
            f"{D}.access.roles[1]: role 'data science' contains whitespace or control characters",
            f"{D}.access.roles[2]: role '{'r' * 64}' is 64 characters long (at most 63)",
        ],
        id="roles-bad",
    ),
    pytest.param(
        env(access(roles=["ops", "ops"])),
        f"{E}.access.roles[1]: role 'ops' is listed twice (first at {P}.access.roles[0])",
        id="env-roles-duplicate",
    ),
    # jwt issuer
    pytest.param(
        dep(access(jwt=[jwt(issuer=None)])),
        f"{D}.access.jwt[0].issuer: issuer is required: the tokens' iss, e.g. "
        "https://sso.example.com",
        id="jwt-issuer-missing",
    ),
    pytest.param(
        dep(access(jwt=[jwt(issuer="https://sso example.com")])),
        f"{D}.access.jwt[0].issuer: issuer 'https://sso example.com' contains whitespace or "
        "control characters",
        id="jwt-issuer-whitespace",
    ),
    pytest.param(
        dep(access(jwt=[jwt(issuer="meshline")])),
        f"{D}.access.jwt[0].issuer: 'meshline' is the issuer of meshline's own API keys: allow "
        "API keys with keys or roles, not a jwt rule",
        id="jwt-issuer-reserved",
    ),
    pytest.param(
        dep(access(jwt=[jwt(), jwt(jwks_uri=None, jwks=GOOD_JWKS)])),
        f"{D}.access.jwt[1].issuer: issuer '{ISSUER}' has a rule already "
        f"({P}.access.jwt[0]): put its audiences and claims into one rule",
        id="jwt-issuer-twice-in-one-policy",
    ),
    # jwks / jwks_uri
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None)])),
        f"{D}.access.jwt[0].jwks: a jwt rule needs the issuer's public keys: jwks (the JWKS "
        "inline) or jwks_uri",
        id="jwt-no-keys",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks=GOOD_JWKS)])),
        f"{D}.access.jwt[0].jwks_uri: give jwks or jwks_uri, not both",
        id="jwt-both-key-sources",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks='{"keys": [')])),
        f"{D}.access.jwt[0].jwks: is not valid JSON (line 1 column 11: Expecting value); "
        'expected a JWKS: {"keys": [...]}',
        id="jwks-not-json",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=json.dumps([RSA_KEY]))])),
        f'{D}.access.jwt[0].jwks: is a JSON list, not a JWKS object: {{"keys": [...]}}',
        id="jwks-a-bare-list",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=jwks())])),
        f'{D}.access.jwt[0].jwks: needs a non-empty "keys" list (a JWKS), "keys" is empty',
        id="jwks-no-keys",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=json.dumps(RSA_KEY))])),
        f'{D}.access.jwt[0].jwks: needs a non-empty "keys" list (a JWKS), "keys" is missing',
        id="jwks-a-single-jwk",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=jwks(RSA_KEY, "key"))])),
        f"{D}.access.jwt[0].jwks: keys[1] is a JSON string, not a JWK object",
        id="jwks-key-not-an-object",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=jwks({"kty": "oct", "k": "c2VjcmV0"}))])),
        f"{D}.access.jwt[0].jwks: keys[0] holds a symmetric key (kty oct): a JWKS lists public "
        "keys only; a secret in it would be copied into every gateway's config",
        id="jwks-symmetric-secret",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=jwks(EC_KEY, {**EC_KEY, "d": "AAAA"}))])),
        f"{D}.access.jwt[0].jwks: keys[1] holds private members (d): a JWKS lists public "
        "keys only; a secret in it would be copied into every gateway's config",
        id="jwks-private-key",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=jwks({**RSA_KEY, "kty": "DSA"}))])),
        f"{D}.access.jwt[0].jwks: keys[0].kty is 'DSA' (expected one of RSA, EC, OKP)",
        id="jwks-unknown-kty",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=jwks({"n": RSA_KEY["n"], "e": "AQAB"}))])),
        f"{D}.access.jwt[0].jwks: keys[0].kty is missing (expected one of RSA, EC, OKP)",
        id="jwks-no-kty",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=jwks({"kty": "RSA", "e": "AQAB"}))])),
        f"{D}.access.jwt[0].jwks: keys[0].n is required (RSA key; base64url)",
        id="jwks-rsa-no-modulus",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=jwks({**RSA_KEY, "n": "a+b/c"}))])),
        f"{D}.access.jwt[0].jwks: keys[0].n is not base64url (letters, digits, '-', '_')",
        id="jwks-rsa-not-base64url",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=jwks({**RSA_KEY, "e": "Ag"}))])),
        f"{D}.access.jwt[0].jwks: keys[0].n and .e do not make an RSA public key",
        id="jwks-rsa-even-exponent",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=jwks({**RSA_KEY, "alg": "ES256"}))])),
        f"{D}.access.jwt[0].jwks: keys[0].alg 'ES256' does not fit an RSA key (expected one of "
        "RS256, RS384, RS512, PS256, PS384, PS512)",
        id="jwks-rsa-wrong-alg",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=jwks({**EC_KEY, "crv": "secp256k1"}))])),
        f"{D}.access.jwt[0].jwks: keys[0].crv is 'secp256k1' (expected one of P-256, P-384, P-521)",
        id="jwks-ec-unknown-curve",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=jwks({**EC_KEY, "alg": "ES256"}))])),
        f"{D}.access.jwt[0].jwks: keys[0].alg 'ES256' does not fit curve P-384 (expected ES384)",
        id="jwks-ec-alg-of-another-curve",
    ),
    pytest.param(
        dep(
            access(
                jwt=[jwt(jwks_uri=None, jwks=jwks({k: v for k, v in EC_KEY.items() if k != "y"}))]
            )
        ),
        f"{D}.access.jwt[0].jwks: keys[0].y is required (EC key; base64url)",
        id="jwks-ec-no-y",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=jwks({**EC_KEY, "y": _int(1, 48)}))])),
        f"{D}.access.jwt[0].jwks: keys[0].x and .y are not a point on curve P-384",
        id="jwks-ec-off-curve",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=jwks({**OKP_KEY, "crv": "X25519"}))])),
        f"{D}.access.jwt[0].jwks: keys[0].crv is 'X25519' (expected Ed25519)",
        id="jwks-okp-not-ed25519",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=jwks({**OKP_KEY, "x": _b64(b"short")}))])),
        f"{D}.access.jwt[0].jwks: keys[0].x is 5 bytes, not a 32-byte Ed25519 public key",
        id="jwks-okp-short-key",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri=None, jwks=jwks(RSA_KEY, {"kty": "EC"}, {"kty": "RSA"}))])),
        [
            f"{D}.access.jwt[0].jwks: keys[1].crv is missing (expected one of P-256, P-384, P-521)",
            f"{D}.access.jwt[0].jwks: keys[2].n is required (RSA key; base64url)",
            f"{D}.access.jwt[0].jwks: keys[2].e is required (RSA key; base64url)",
        ],
        id="jwks-every-bad-key-named",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri="ftp://sso.example.com/jwks")])),
        f"{D}.access.jwt[0].jwks_uri: 'ftp://sso.example.com/jwks' is not an http or https URL",
        id="jwks-uri-scheme",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri="sso.example.com/jwks")])),
        f"{D}.access.jwt[0].jwks_uri: 'sso.example.com/jwks' is not an http or https URL",
        id="jwks-uri-no-scheme",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri="https:///jwks")])),
        f"{D}.access.jwt[0].jwks_uri: 'https:///jwks' has no host",
        id="jwks-uri-no-host",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri="https://sso.example.com:0/jwks")])),
        f"{D}.access.jwt[0].jwks_uri: 'https://sso.example.com:0/jwks' has a port that is not "
        "a number in 1..65535",
        id="jwks-uri-port-0",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri="https://sso.example.com:65536/jwks")])),
        f"{D}.access.jwt[0].jwks_uri: 'https://sso.example.com:65536/jwks' has a port that is "
        "not a number in 1..65535",
        id="jwks-uri-port-too-big",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri="https://admin:hunter2@sso.example.com/jwks")])),
        f"{D}.access.jwt[0].jwks_uri: has userinfo (user:password@): gateways fetch the keys "
        "without credentials, and a password must not sit in a policy",
        id="jwks-uri-userinfo-not-echoed",
    ),
    pytest.param(
        dep(access(jwt=[jwt(jwks_uri="https://sso.example.com/jwks#keys")])),
        f"{D}.access.jwt[0].jwks_uri: 'https://sso.example.com/jwks#keys' has a fragment "
        "(#...): a JWKS URL names a document, not a part of one",
        id="jwks-uri-fragment",
    ),
    # audiences and claims
    pytest.param(
        dep(access(jwt=[jwt(audiences=["api", "", "api"])])),
        [
            f"{D}.access.jwt[0].audiences[1]: an audience must not be empty",
            f"{D}.access.jwt[0].audiences[2]: audience 'api' is listed twice (first at "
            f"{P}.access.jwt[0].audiences[0])",
        ],
        id="audiences-bad",
    ),
    pytest.param(
        dep(
            access(
                jwt=[
                    jwt(
                        claims=[
                            {"values": ["x"]},
                            {"claim": "group s", "values": ["x"]},
                            {"claim": "realm..roles", "values": ["x"]},
                            {"claim": ".sub", "values": ["x"]},
                            {"claim": "groups"},
                            {"claim": "groups", "values": ["ml", ""]},
                        ]
                    )
                ]
            )
        ),
        [
            f"{D}.access.jwt[0].claims[0].claim: claim is required: the claim's name, e.g. sub "
            "or groups",
            f"{D}.access.jwt[0].claims[1].claim: 'group s' is not a claim name: letters, digits, "
            "'_', '-', ':' and '.' only",
            f"{D}.access.jwt[0].claims[2].claim: 'realm..roles' has an empty name between its "
            "dots (a path into objects, e.g. realm_access.roles)",
            f"{D}.access.jwt[0].claims[3].claim: '.sub' has an empty name between its dots (a "
            "path into objects, e.g. realm_access.roles)",
            f"{D}.access.jwt[0].claims[4].values: a claim match needs at least one value",
            f"{D}.access.jwt[0].claims[5].values[1]: a value must not be empty",
        ],
        id="claims-bad",
    ),
    # firewall
    pytest.param(
        dep(access(firewall={"allow": ["10.0.0.0/8", "10.0.0.1/8"]})),
        f"{D}.access.firewall.allow[1]: '10.0.0.1/8' has bits set after its /8 prefix: write "
        "the network 10.0.0.0/8, or 10.0.0.1/32 for the one address",
        id="firewall-host-bits",
    ),
    pytest.param(
        dep(access(firewall={"deny": ["2001:db8::1/32"]})),
        f"{D}.access.firewall.deny[0]: '2001:db8::1/32' has bits set after its /32 prefix: "
        "write the network 2001:db8::/32, or 2001:db8::1/128 for the one address",
        id="firewall-ipv6-host-bits",
    ),
    pytest.param(
        env(access(firewall={"allow": ["10.0.0.0/33", "example.com", "10.0.0.0/8 "]})),
        [
            f"{E}.access.firewall.allow[0]: '10.0.0.0/33' is not an IPv4 or IPv6 CIDR (e.g. "
            "10.0.0.0/8, 2001:db8::/32)",
            f"{E}.access.firewall.allow[1]: 'example.com' is not an IPv4 or IPv6 CIDR (e.g. "
            "10.0.0.0/8, 2001:db8::/32)",
            f"{E}.access.firewall.allow[2]: '10.0.0.0/8 ' is not an IPv4 or IPv6 CIDR (e.g. "
            "10.0.0.0/8, 2001:db8::/32)",
        ],
        id="firewall-not-cidrs",
    ),
    pytest.param(
        dep(access(firewall={"allow": ["fe80::1%eth0"]})),
        f"{D}.access.firewall.allow[0]: 'fe80::1%eth0' has an IPv6 zone (%...): a gateway "
        "compares addresses without one",
        id="firewall-ipv6-zone",
    ),
    pytest.param(
        dep(access(firewall={"trusted_hops": 11})),
        f"{D}.access.firewall.trusted_hops: {HOPS_RANGE}, got 11",
        id="trusted-hops-over-cap",
    ),
    pytest.param(
        dep(access(firewall={"trusted_hops": -1})),
        f"{D}.access.firewall.trusted_hops: {HOPS_RANGE}, got -1",
        id="trusted-hops-negative",
    ),
    # rate
    pytest.param(
        dep(rate()),
        f"{D}.rate: a rate policy sets a deployment limit, a principal limit, or both",
        id="rate-no-limit",
    ),
    pytest.param(
        dep(rate(deployment={})),
        f"{D}.rate.deployment.requests_per_second: {RATE_RANGE}, got 0",
        id="rate-unset-rps",
    ),
    pytest.param(
        dep(rate(principal={"requests_per_second": -5})),
        f"{D}.rate.principal.requests_per_second: {RATE_RANGE}, got -5",
        id="rate-negative",
    ),
    pytest.param(
        env(rate(deployment={"requests_per_second": 1_000_001})),
        f"{E}.rate.deployment.requests_per_second: {RATE_RANGE}, got 1000001",
        id="env-rate-too-high",
    ),
    pytest.param(
        dep(rate(deployment={"requests_per_second": 1e-300})),
        f"{D}.rate.deployment.requests_per_second: {RATE_RANGE}, got 1e-300",
        id="rate-tiny",
    ),
    pytest.param(
        dep(rate(deployment={"requests_per_second": 10, "burst": -1})),
        f"{D}.rate.deployment.burst: {BURST_RANGE}, got -1",
        id="burst-negative",
    ),
    pytest.param(
        dep(rate(principal={"requests_per_second": 10, "burst": 1_000_000_001})),
        f"{D}.rate.principal.burst: {BURST_RANGE}, got 1000000001",
        id="burst-too-big",
    ),
]


@pytest.mark.parametrize(("doc", "lines"), BAD)
def test_bad_access_and_rate_policies(store: Store, doc: Resource, lines: str | list[str]) -> None:
    expected = [lines] if isinstance(lines, str) else lines
    assert refused(store, [doc]) == [(0, line) for line in expected]


GOOD = [
    pytest.param(dep(access()), id="names-nobody-means-any-key-in-scope"),
    pytest.param(dep(access(anonymous=True)), id="anonymous"),
    pytest.param(
        dep(access(keys=["ci", "web-app"], roles=["data-scientists", "ops:read", "R&D"])),
        id="keys-and-roles",
    ),
    pytest.param(
        dep(
            access(
                jwt=[
                    jwt(
                        audiences=["inference", "api://meshline"],
                        claims=[
                            {"claim": "realm_access.roles", "values": ["ml"]},
                            {"claim": "https:x-groups", "values": ["a", "b"]},
                        ],
                    ),
                    jwt(issuer="accounts.example.org", jwks_uri=None, jwks=GOOD_JWKS),
                    jwt(issuer="http://10.0.0.5:8080", jwks_uri="http://10.0.0.5:8080/keys?v=2"),
                    jwt(issuer="ipv6", jwks_uri="https://[2001:db8::1]:8443/jwks"),
                ]
            )
        ),
        id="jwt-rules",
    ),
    pytest.param(
        env(
            access(
                firewall={
                    "allow": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7", "2001:db8::7"],
                    "deny": ["10.1.0.0/16", "0.0.0.0/0"],
                    "trusted_hops": 10,
                }
            )
        ),
        id="firewall-bare-addresses-and-cap",
    ),
    pytest.param(dep(access(firewall={})), id="empty-firewall"),
    pytest.param(
        dep(
            access(anonymous=True),
            rate(deployment={"requests_per_second": 0.001}, principal={"requests_per_second": 1e6}),
        ),
        id="rate-edges",
    ),
    pytest.param(
        env(rate(principal={"requests_per_second": 2.5, "burst": 1_000_000_000})),
        id="env-rate-largest-burst",
    ),
    pytest.param(env(access(roles=["ops"]), mode="optional"), id="env-optional"),
]


@pytest.mark.parametrize("doc", GOOD)
def test_good_access_and_rate_policies_are_stored(store: Store, doc: Resource) -> None:
    apply_resources(store, [doc])
    snap = store.snapshot()
    if doc.HasField("deployment"):
        [match] = [d.spec.policies for d in snap.deployments if d.metadata.name == "d"]
        assert list(match) == list(doc.deployment.spec.policies)
    else:
        [match] = [e.spec.policies for e in snap.environments if e.metadata.name == "staging"]
        assert list(match) == list(doc.environment.spec.policies)


# --- across resources -------------------------------------------------------------------


def hops(n: int, name: str = "d") -> Resource:
    return deployment(name, "mnist", "v1", policies=[policy(access(firewall={"trusted_hops": n}))])


def test_trusted_hops_differing_from_a_stored_firewall_is_refused(store: Store) -> None:
    apply_resources(store, [env(access(firewall={"trusted_hops": 2}))])
    assert refused(store, [hops(1)]) == [
        (
            0,
            f"{D}.access.firewall.trusted_hops: 1 here, but environment 'staging' sets 2 "
            "(spec.policies[0].access.firewall.trusted_hops): a gateway finds the client address "
            "once, before it chooses a route, so every firewall must use the same hop count",
        )
    ]


def test_trusted_hops_differing_within_one_apply_refuses_both(store: Store) -> None:
    lines = refused(store, [hops(1, "a"), hops(3, "b")])
    assert [(i, line.split(": ")[1]) for i, line in lines] == [
        (0, "spec.policies[0].access.firewall.trusted_hops"),
        (1, "spec.policies[0].access.firewall.trusted_hops"),
    ]
    assert "deployment 'b' in environment 'production' sets 3" in lines[0][1]
    assert "deployment 'a' in environment 'production' sets 1" in lines[1][1]


def test_trusted_hops_the_same_everywhere_or_unset_applies(store: Store) -> None:
    apply_resources(store, [env(access(firewall={"trusted_hops": 2})), hops(2, "a"), hops(0, "b")])
    # Every firewall moves to a new count at once: the request replaces what is stored.
    apply_resources(store, [env(access(firewall={"trusted_hops": 3})), hops(3, "a")])


def test_an_out_of_range_hop_count_is_not_compared_again(store: Store) -> None:
    apply_resources(store, [env(access(firewall={"trusted_hops": 2}))])
    assert refused(store, [hops(11)]) == [
        (0, f"{D}.access.firewall.trusted_hops: {HOPS_RANGE}, got 11")
    ]


def test_one_issuer_with_other_keys_elsewhere_is_refused(store: Store) -> None:
    apply_resources(store, [env(access(jwt=[jwt()]))])
    other = "https://sso.example.com/other-keys.json"
    assert refused(store, [dep(access(jwt=[jwt(jwks_uri=other)]))]) == [
        (
            0,
            f"{D}.access.jwt[0].jwks_uri: issuer '{ISSUER}' has other keys in environment "
            "'staging' (spec.policies[0].access.jwt[0]): one issuer has one set of keys; give "
            "the same jwks or jwks_uri in both",
        )
    ]
    assert refused(store, [dep(access(jwt=[jwt(jwks_uri=None, jwks=GOOD_JWKS)]))]) == [
        (
            0,
            f"{D}.access.jwt[0].jwks: issuer '{ISSUER}' has other keys in environment 'staging' "
            "(spec.policies[0].access.jwt[0]): one issuer has one set of keys; give the same "
            "jwks or jwks_uri in both",
        )
    ]


def test_one_issuer_with_the_same_keys_everywhere_applies(store: Store) -> None:
    inline = jwt(issuer="accounts.example.org", jwks_uri=None, jwks=GOOD_JWKS)
    apply_resources(store, [env(access(jwt=[jwt(), inline]))])
    reformatted = json.dumps(json.loads(GOOD_JWKS), indent=2)
    apply_resources(
        store,
        [dep(access(jwt=[jwt(audiences=["api"]), {**inline, "jwks": reformatted}]))],
    )


# --- YAML documents ---------------------------------------------------------------------

ENVIRONMENT = f"""
kind: Environment
metadata: {{name: staging}}
spec:
  policies:
    - mode: mandatory
      access:
        anonymous: false
        keys: [ci]
        roles: [ml]
        jwt:
          - issuer: {ISSUER}
            audiences: [inference]
            jwks_uri: {URI}
            claims: [{{claim: realm_access.roles, values: [ml]}}]
        firewall: {{allow: [10.0.0.0/8], deny: [10.9.0.0/16], trusted_hops: 1}}
    - rate:
        deployment: {{requests_per_second: 100, burst: 200}}
        principal: {{requests_per_second: 2.5}}
"""


def test_an_environment_document_with_access_and_rate_applies(store: Store) -> None:
    resource = parse_resource_document(yaml.safe_load(ENVIRONMENT), "env.yaml", 0)
    apply_resources(store, [resource])
    [staging] = [e for e in store.snapshot().environments if e.metadata.name == "staging"]
    assert staging.spec.policies[0].access.firewall.trusted_hops == 1
    assert staging.spec.policies[1].rate.principal.requests_per_second == 2.5


@pytest.mark.parametrize(
    ("typo", "field", "problem"),
    [
        (
            ("anonymous: false", "anonymus: true"),
            "spec.policies[0].access.anonymus",
            "unknown field 'anonymus' in spec.policies[0].access",
        ),
        (
            ("firewall: {allow:", "firewall: {alow:"),
            "spec.policies[0].access.firewall.alow",
            "unknown field 'alow' in spec.policies[0].access.firewall",
        ),
        (
            ("jwks_uri:", "jwks_url:"),
            "spec.policies[0].access.jwt[0].jwks_url",
            "unknown field 'jwks_url' in spec.policies[0].access.jwt[0]",
        ),
        (
            ("{claim: realm_access.roles, values: [ml]}", "{claim: roles, value: ml}"),
            "spec.policies[0].access.jwt[0].claims[0].value",
            "unknown field 'value' in spec.policies[0].access.jwt[0].claims[0]",
        ),
        (
            ("trusted_hops: 1", "trusted_hops: one"),
            "spec.policies[0].access.firewall.trusted_hops",
            "spec.policies[0].access.firewall.trusted_hops: expected an integer, got 'one'",
        ),
        (
            ("burst: 200", "burts: 200"),
            "spec.policies[1].rate.deployment.burts",
            "unknown field 'burts' in spec.policies[1].rate.deployment",
        ),
        (
            ("requests_per_second: 2.5", "requests_per_second: .inf"),
            "spec.policies[1].rate.principal.requests_per_second",
            "spec.policies[1].rate.principal.requests_per_second: must be between 0.001 and "
            "1000000 requests per second, got inf",
        ),
    ],
)
def test_a_typo_in_an_access_or_rate_policy_is_refused_by_name(
    typo: tuple[str, str], field: str, problem: str
) -> None:
    old, new = typo
    assert old in ENVIRONMENT
    with pytest.raises(DocumentError) as caught:
        parse_resource_document(yaml.safe_load(ENVIRONMENT.replace(old, new)), "env.yaml", 0)
    assert (caught.value.field, caught.value.problem) == (field, problem)
