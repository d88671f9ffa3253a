"""Edge IAM with the real Envoy: who may call a deployment, from where, how often.

GatewayIRs built here go IR → translate_gateway → static bootstrap → `envoy` (one Envoy for the
module; the key-rotation test runs its own). Upstreams: the real Torch worker serves deployment
`mnist` in one environment per access setup (its own `meshline_worker_requests` counter tells
whether a refused request reached it); the translate upstream serves `echo`, answering with the
headers it received (principal, credential, hop marker). Every case runs over gRPC
(generated stubs) and REST (http.client), with exact codes, and every refusal must name the
deployment and the reason.
"""

from __future__ import annotations

import http.client
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from prometheus_client.parser import text_string_to_metric_families

from controlplane.api.key_tokens import KeyClaims, MintedKey, b64url, mint_key
from controlplane.ir import DeploymentRoute, Endpoint, GatewayIR, HealthCheckSettings
from controlplane.ir.model import Credentials, PublicKey
from controlplane.policy.access import (
    AccessSettings,
    CallerRule,
    ClaimRule,
    FirewallRule,
    JwtCaller,
    JwtIssuer,
    RateSettings,
    TokenBucket,
)
from meshline import wire
from meshline.inference import grpc_service_pb2 as pb
from meshline.inference import grpc_service_pb2_grpc as pb_grpc
from tests.controlplane.translate.envoy_gateway import HOST, Gateway, running_gateway
from tests.controlplane.translate.identity_provider import SigningKey, serving_jwks
from tests.harness.processes import free_port, managed, wait_until
from tests.harness.worker import WorkerHandle, running_worker
from workers.demo import DEMO_SIGNATURE, build_mlp

REGION = "edge"
MODEL = "mnist"
ECHO = "echo"
VERSION = "v1"
# Few probes: ~60 clusters check the one worker; the first check runs at start anyway.
CHECKS = HealthCheckSettings(interval_s=5.0, timeout_s=2.0)
INLINE_ISSUER = "https://idp.example.test/inline"
REMOTE_ISSUER = "https://idp.example.test/remote"
AUDIENCE = "mnist-api"
PROTOCOLS = ("rest", "grpc")
CODES: dict[str, dict[int, str]] = {
    "rest": {200: "200", 401: "401", 403: "403", 429: "429"},
    "grpc": {
        200: "OK",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        429: "RESOURCE_EXHAUSTED",
    },
}
# A closed loop for the rate limit: its clients, how long, how close to the limit.
RATE_CLIENTS = 4
RATE_RUN_S = 2.5
RATE_TOLERANCE = 0.10
DEPLOYMENT_RATE = TokenBucket(requests_per_second=40.0, burst=10)
PRINCIPAL_RATE = TokenBucket(requests_per_second=20.0, burst=5)
JWT_PATTERN = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")

ANY_KEY = AccessSettings()  # the default: any meshline API key in scope
MANDATORY = "environment layered (mandatory)"


def _rules(*rules: CallerRule) -> AccessSettings:
    return AccessSettings(callers=rules)


def _firewall(allow: tuple[str, ...] = (), deny: tuple[str, ...] = ()) -> AccessSettings:
    return AccessSettings(firewalls=(FirewallRule("deployment mnist", allow, deny),))


IDP_RULE = CallerRule(
    "deployment mnist",
    jwt=(
        JwtCaller(INLINE_ISSUER, (AUDIENCE,), (ClaimRule("groups", ("scorers",)),)),
        JwtCaller(REMOTE_ISSUER, (), (ClaimRule("sub", ("svc-batch",)),)),
    ),
)

# environment of deployment `mnist` → (access, rate)
WORKER_ROUTES: dict[str, tuple[AccessSettings, RateSettings]] = {
    "production": (ANY_KEY, RateSettings()),
    "named": (_rules(CallerRule("deployment mnist", keys=("alice",))), RateSettings()),
    "roles": (_rules(CallerRule("deployment mnist", roles=("scorer",))), RateSettings()),
    "layered": (
        _rules(CallerRule(MANDATORY, roles=("scorer",)), CallerRule("mnist", keys=("alice",))),
        RateSettings(),
    ),
    "open": (AccessSettings.open(), RateSettings()),
    "fw-deny-loopback": (_firewall(deny=("127.0.0.0/8",)), RateSettings()),
    "fw-allow-ten": (_firewall(allow=("10.0.0.0/8",)), RateSettings()),
    "fw-allow-self": (_firewall(allow=("127.0.0.1/32",)), RateSettings()),
    "limited-rest": (AccessSettings.open(), RateSettings(deployment=DEPLOYMENT_RATE)),
    "limited-grpc": (AccessSettings.open(), RateSettings(deployment=DEPLOYMENT_RATE)),
    "per-key": (ANY_KEY, RateSettings(principal=PRINCIPAL_RATE)),
}
ECHO_ROUTES: dict[str, AccessSettings] = {"production": ANY_KEY, "open": AccessSettings.open()}


# --- credentials ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    """API key secrets minted for the test; `working` are the gateway's credentials."""

    minted: dict[str, MintedKey]
    working: tuple[PublicKey, ...]
    private_markers: tuple[str, ...]  # text of the private keys that signed them

    def token(self, name: str) -> str:
        return self.minted[name].secret


def mint_keys() -> Keys:
    now = int(time.time())
    claims = {
        "alice": KeyClaims("alice", now),
        "alice-scorer": KeyClaims("alice", now, roles=("scorer",)),
        "bob": KeyClaims("bob", now),
        "bob-scorer": KeyClaims("bob", now, roles=("scorer",)),
        "carol-viewer": KeyClaims("carol", now, roles=("viewer",)),
        "dave-staging": KeyClaims("dave", now, environment="staging"),
        "erin-other-deployment": KeyClaims("erin", now, deployments=("fraud",)),
        "frank-scoped": KeyClaims("frank", now, environment="production", deployments=(MODEL,)),
        "expired": KeyClaims("alice", now - 7200, expires_at=now - 3600),
        "revoked": KeyClaims("alice", now),
    }
    minted: dict[str, MintedKey] = {}
    markers: list[str] = []
    for name, claim in claims.items():
        private = Ed25519PrivateKey.generate()
        minted[name] = mint_key(claim, private_key=private)
        raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        markers += [b64url(raw), raw.hex()]
    working = tuple(
        PublicKey(m.key_id, m.public_key) for name, m in minted.items() if name != "revoked"
    )
    return Keys(minted, working, tuple(markers))


@dataclass(frozen=True)
class Idp:
    """The user's identity providers: one with inline keys, one whose JWKS Envoy fetches."""

    inline: SigningKey
    remote: SigningKey
    stranger: SigningKey  # a key neither provider publishes

    def token(self, key: SigningKey, issuer: str, **claims: object) -> str:
        now = int(time.time())
        return key.sign({"iss": issuer, "iat": now, "exp": now + 3600, **claims})


# --- the module's gateway ------------------------------------------------------------------


@dataclass
class Setup:
    gw: Gateway
    worker: WorkerHandle
    keys: Keys
    idp: Idp
    demo_model: Path
    logs: Path


def gateway_ir(
    port: int,
    worker: Endpoint,
    echo: Endpoint,
    credentials: Credentials,
    issuers: tuple[JwtIssuer, ...],
) -> GatewayIR:
    idp = AccessSettings(callers=(IDP_RULE,), issuers=issuers)
    worker_routes = {**WORKER_ROUTES, "idp": (idp, RateSettings())}
    routes = [
        DeploymentRoute.local(
            MODEL, env, (worker,), REGION, VERSION, health_check=CHECKS, access=access, rate=rate
        )
        for env, (access, rate) in worker_routes.items()
    ]
    echo_routes = {**ECHO_ROUTES, "idp": idp}
    routes += [
        DeploymentRoute.local(ECHO, env, (echo,), REGION, VERSION, health_check=CHECKS, access=a)
        for env, a in echo_routes.items()
    ]
    return GatewayIR(REGION, HOST, port, tuple(routes), credentials)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    logs = tmp_path_factory.mktemp("envoy-access")
    demo_model = build_mlp(logs / "mnist.pt", seed=0)
    keys = mint_keys()
    idp = Idp(
        SigningKey.generate("inline-1"),
        SigningKey.generate("remote-1"),
        SigningKey.generate("stranger-1"),
    )
    echo_grpc, echo_http = free_port(), free_port()
    with ExitStack() as stack:
        jwks = stack.enter_context(serving_jwks([idp.remote]))
        issuers = (
            JwtIssuer(INLINE_ISSUER, jwks=json.dumps({"keys": [idp.inline.jwk()]})),
            JwtIssuer(REMOTE_ISSUER, jwks_uri=jwks.uri),
        )
        stack.enter_context(
            managed(
                "upstream-echo",
                [
                    sys.executable,
                    "-m",
                    "tests.controlplane.translate.translate_upstream",
                    f"--name={ECHO}",
                    f"--grpc-port={echo_grpc}",
                    f"--http-port={echo_http}",
                ],
                logs,
            )
        )
        worker = stack.enter_context(
            running_worker(logs, demo_model, model_name=MODEL, signature=DEMO_SIGNATURE)
        )
        ir = gateway_ir(
            free_port(),
            Endpoint("torch", HOST, worker.grpc_port, worker.http_port),
            Endpoint(ECHO, HOST, echo_grpc, echo_http),
            Credentials(keys.working),
            issuers,
        )
        gw = stack.enter_context(running_gateway(ir, logs, wait_healthy=True))
        setup = Setup(gw, worker, keys, idp, demo_model, logs)
        # The remote JWKS is fetched at start (async_fetch): wait until its tokens verify.
        remote = idp.token(idp.remote, REMOTE_ISSUER, sub="svc-batch")
        wait_until(
            lambda: call(gw, "rest", "idp", token=remote).code == "200",
            what="envoy fetched the remote JWKS",
        )
        yield setup


# --- clients -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One answer, protocol-neutral: `code` is the HTTP status (REST) or the gRPC status name."""

    code: str
    message: str = ""
    echoed: dict[str, str] = field(default_factory=dict)  # what the echo upstream received
    headers: dict[str, str] = field(default_factory=dict)


IMAGE = np.zeros((1, 784), dtype=np.float32)
REST_BODY = json.dumps(
    {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 784], "data": [0.0] * 784}]}
).encode()


def _grpc_request(deployment: str) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=deployment)
    request.inputs.add(name="input", datatype="FP32", shape=[1, 784])
    request.raw_input_contents.append(IMAGE.tobytes())
    return request


def _headers(token: str | None, extra: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return ([("authorization", f"Bearer {token}")] if token else []) + list(extra)


def rest_call(
    connection: http.client.HTTPConnection,
    environment: str,
    deployment: str = MODEL,
    token: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> Outcome:
    sent = {"content-type": "application/json", wire.ENVIRONMENT_HEADER: environment}
    sent.update(_headers(token, headers))
    connection.request("POST", f"/v2/models/{deployment}/infer", REST_BODY, sent)
    response = connection.getresponse()
    body = json.loads(response.read() or b"{}")
    answer_headers = {k.lower(): v for k, v in response.getheaders()}
    if response.status != 200:
        return Outcome(str(response.status), str(body.get("error", body)), {}, answer_headers)
    echoed = {k: v for k, v in body.items() if isinstance(v, str)} if deployment == ECHO else {}
    return Outcome("200", "", echoed, answer_headers)


def grpc_call(
    stub: pb_grpc.GRPCInferenceServiceStub,
    environment: str,
    deployment: str = MODEL,
    token: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> Outcome:
    metadata = [
        (wire.DEPLOYMENT_HEADER, deployment),
        (wire.ENVIRONMENT_HEADER, environment),
        *_headers(token, headers),
    ]
    try:
        response = stub.ModelInfer(_grpc_request(deployment), metadata=metadata, timeout=10)
    except grpc.RpcError as error:
        trailers = {k: str(v) for k, v in (error.trailing_metadata() or ())}
        return Outcome(error.code().name, error.details() or "", {}, trailers)
    echoed = {k: p.string_param for k, p in response.parameters.items()}
    return Outcome("OK", "", echoed if deployment == ECHO else {})


def call(
    gw: Gateway,
    protocol: str,
    environment: str,
    deployment: str = MODEL,
    token: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> Outcome:
    """One request on a fresh connection."""
    if protocol == "rest":
        connection = http.client.HTTPConnection(HOST, gw.port, timeout=10)
        try:
            return rest_call(connection, environment, deployment, token, headers)
        finally:
            connection.close()
    with grpc.insecure_channel(gw.address) as channel:
        return grpc_call(
            pb_grpc.GRPCInferenceServiceStub(channel), environment, deployment, token, headers
        )


def worker_requests(worker: WorkerHandle) -> float:
    """The worker's own count of inference requests it received (both protocols)."""
    connection = http.client.HTTPConnection(worker.host, worker.http_port, timeout=5)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "meshline_worker_requests"
        for sample in family.samples
        if sample.name == "meshline_worker_requests_total"
    )


def refused_without_reaching_worker(setup: Setup, request: Callable[[], Outcome]) -> Outcome:
    """Run a request that must be refused; the worker's counter must not move for it (and a
    valid request right after moves it by one, so the counter is really being read)."""
    before = worker_requests(setup.worker)
    outcome = request()
    assert worker_requests(setup.worker) == before, (
        f"a refused request reached the worker: {outcome}"
    )
    control = call(setup.gw, "rest", "production", token=setup.keys.token("alice"))
    assert control.code == "200", control
    assert worker_requests(setup.worker) == before + 1
    return outcome


def reached_worker_once(setup: Setup, request: Callable[[], Outcome]) -> Outcome:
    before = worker_requests(setup.worker)
    outcome = request()
    assert worker_requests(setup.worker) == before + 1, outcome
    return outcome


def names_deployment(outcome: Outcome, environment: str, deployment: str = MODEL) -> bool:
    return f"deployment '{deployment}' in environment '{environment}'" in outcome.message


def token_of(setup: Setup, credential: str) -> str | None:
    """A credential by name: an API key's, "garbage", or none."""
    if credential == "none":
        return None
    if credential == "garbage":
        return "not-a-token"
    return setup.keys.token(credential)


# --- 1. who has no valid credential --------------------------------------------------------

BAD_CREDENTIALS = {
    "none": "Jwt is missing",
    "garbage": "Jwt is not in the form of Header.Payload.Signature",
    "expired": "Jwt is expired",
    # Signed by a key the gateway's credentials do not hold: a revoked (or foreign) key.
    "revoked": "Jwks doesn't have key to match kid or alg from Jwt",
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("credential", sorted(BAD_CREDENTIALS))
def test_invalid_credential_is_unauthenticated_and_never_reaches_the_worker(
    setup: Setup, protocol: str, credential: str
) -> None:
    outcome = refused_without_reaching_worker(
        setup, lambda: call(setup.gw, protocol, "production", token=token_of(setup, credential))
    )
    assert outcome.code == CODES[protocol][401], outcome
    assert names_deployment(outcome, "production"), outcome.message
    assert BAD_CREDENTIALS[credential] in outcome.message


# --- 2. a valid key: served, with the verified principal -----------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_valid_key_is_served(setup: Setup, protocol: str) -> None:
    outcome = reached_worker_once(
        setup, lambda: call(setup.gw, protocol, "production", token=setup.keys.token("alice"))
    )
    assert outcome.code == CODES[protocol][200], outcome


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_upstream_gets_the_verified_principal_and_never_the_credential(
    setup: Setup, protocol: str
) -> None:
    forged = ((wire.PRINCIPAL_HEADER, "mallory"),)
    outcome = call(setup.gw, protocol, "production", ECHO, setup.keys.token("bob"), forged)
    assert outcome.code == CODES[protocol][200], outcome
    assert outcome.echoed[wire.PRINCIPAL_HEADER] == "bob"
    assert "authorization" not in outcome.echoed
    assert outcome.echoed[wire.DEPLOYMENT_HEADER] == ECHO  # the echo really reports headers


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_anonymous_caller_has_no_principal_whatever_it_sends(setup: Setup, protocol: str) -> None:
    outcome = call(setup.gw, protocol, "open", ECHO, headers=((wire.PRINCIPAL_HEADER, "mallory"),))
    assert outcome.code == CODES[protocol][200], outcome
    assert wire.PRINCIPAL_HEADER not in outcome.echoed
    assert outcome.echoed[wire.ENVIRONMENT_HEADER] == "open"
    # A key on an anonymous route still names its caller.
    keyed = call(
        setup.gw,
        protocol,
        "open",
        ECHO,
        setup.keys.token("alice"),
        ((wire.PRINCIPAL_HEADER, "mallory"),),
    )
    assert keyed.echoed[wire.PRINCIPAL_HEADER] == "alice"
    assert "authorization" not in keyed.echoed


# --- 3. access rules -----------------------------------------------------------------------

# (environment, credential, expected HTTP-equivalent status)
ACCESS_TABLE = [
    ("named", "alice", 200),
    ("named", "bob", 403),
    ("roles", "alice-scorer", 200),
    ("roles", "carol-viewer", 403),
    ("roles", "alice", 403),
    ("production", "dave-staging", 403),  # key scoped to another environment
    ("production", "erin-other-deployment", 403),  # key scoped to another deployment
    ("production", "frank-scoped", 200),  # scoped to exactly this one
    # Two rules (mandatory environment: role scorer; deployment: key alice): both must allow.
    ("layered", "alice-scorer", 200),
    ("layered", "alice", 403),
    ("layered", "bob-scorer", 403),
    ("open", "none", 200),
    ("open", "alice", 200),
    ("open", "garbage", 401),  # anonymous welcome, an invalid credential still is not
    ("open", "expired", 401),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("environment", "credential", "status"), ACCESS_TABLE)
def test_access_rules(
    setup: Setup, protocol: str, environment: str, credential: str, status: int
) -> None:
    def request() -> Outcome:
        return call(setup.gw, protocol, environment, token=token_of(setup, credential))

    if status == 200:
        outcome = reached_worker_once(setup, request)
    else:
        outcome = refused_without_reaching_worker(setup, request)
        assert names_deployment(outcome, environment), outcome.message
    assert outcome.code == CODES[protocol][status], outcome
    if status == 403:
        assert "caller-not-allowed" in outcome.message


# --- 4. firewall ---------------------------------------------------------------------------

FIREWALL_TABLE = [
    ("fw-deny-loopback", "alice", 403),
    ("fw-deny-loopback", "none", 403),  # the address is refused before the credential
    ("fw-allow-ten", "alice", 403),
    ("fw-allow-self", "alice", 200),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("environment", "credential", "status"), FIREWALL_TABLE)
def test_firewall(
    setup: Setup, protocol: str, environment: str, credential: str, status: int
) -> None:
    def request() -> Outcome:
        return call(setup.gw, protocol, environment, token=token_of(setup, credential))

    if status == 200:
        outcome = reached_worker_once(setup, request)
    else:
        outcome = refused_without_reaching_worker(setup, request)
        assert names_deployment(outcome, environment), outcome.message
        assert "client-address-blocked" in outcome.message
    assert outcome.code == CODES[protocol][status], outcome


# --- 5. the user's own identity provider ---------------------------------------------------


def idp_token(setup: Setup, case: str) -> str:
    idp = setup.idp
    tokens = {
        "inline-scorer": lambda: idp.token(
            idp.inline, INLINE_ISSUER, sub="ann", aud=AUDIENCE, groups=["viewers", "scorers"]
        ),
        "inline-aud-list": lambda: idp.token(
            idp.inline, INLINE_ISSUER, sub="ann", aud=["other", AUDIENCE], groups=["scorers"]
        ),
        "inline-wrong-audience": lambda: idp.token(
            idp.inline, INLINE_ISSUER, sub="ann", aud="another-api", groups=["scorers"]
        ),
        "inline-no-group": lambda: idp.token(
            idp.inline, INLINE_ISSUER, sub="ann", aud=AUDIENCE, groups=["viewers"]
        ),
        "inline-expired": lambda: idp.inline.sign(
            {
                "iss": INLINE_ISSUER,
                "sub": "ann",
                "aud": AUDIENCE,
                "groups": ["scorers"],
                "iat": int(time.time()) - 7200,
                "exp": int(time.time()) - 3600,
            }
        ),
        "inline-unknown-key": lambda: idp.token(
            idp.stranger, INLINE_ISSUER, sub="ann", aud=AUDIENCE, groups=["scorers"]
        ),
        "remote-batch": lambda: idp.token(idp.remote, REMOTE_ISSUER, sub="svc-batch"),
        "remote-other-subject": lambda: idp.token(idp.remote, REMOTE_ISSUER, sub="svc-other"),
        "unknown-issuer": lambda: idp.token(idp.remote, "https://elsewhere.test", sub="svc-batch"),
    }
    return tokens[case]()


IDP_TABLE = [
    ("inline-scorer", 200, ""),
    ("inline-aud-list", 200, ""),
    # jwt_authn checks no audience (the providers name none); the access rule does.
    ("inline-wrong-audience", 403, "caller-not-allowed"),
    ("inline-no-group", 403, "caller-not-allowed"),
    ("inline-expired", 401, "Jwt is expired"),
    ("inline-unknown-key", 401, "Jwks doesn't have key to match kid or alg from Jwt"),
    ("remote-batch", 200, ""),
    ("remote-other-subject", 403, "caller-not-allowed"),
    ("unknown-issuer", 401, "Jwt issuer is not configured"),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("case", "status", "reason"), IDP_TABLE)
def test_identity_provider_tokens(
    setup: Setup, protocol: str, case: str, status: int, reason: str
) -> None:
    token = idp_token(setup, case)

    def request() -> Outcome:
        return call(setup.gw, protocol, "idp", token=token)

    if status == 200:
        outcome = reached_worker_once(setup, request)
    else:
        outcome = refused_without_reaching_worker(setup, request)
        assert names_deployment(outcome, "idp"), outcome.message
        assert reason in outcome.message
    assert outcome.code == CODES[protocol][status], outcome


def test_identity_provider_principal_is_the_subject(setup: Setup) -> None:
    """An IdP's verified `sub` is the principal; the token does not travel on."""
    token = idp_token(setup, "remote-batch")
    for protocol in PROTOCOLS:
        outcome = call(setup.gw, protocol, "idp", ECHO, token, ((wire.PRINCIPAL_HEADER, "m"),))
        assert outcome.echoed[wire.PRINCIPAL_HEADER] == "svc-batch", outcome
        assert "authorization" not in outcome.echoed


def test_rotated_issuer_keys_need_a_refetch(setup: Setup) -> None:
    """The issuer starts signing with a new key and publishes it. Envoy keeps the JWKS it
    fetched for jwt.JWKS_CACHE_S (60 s): until then, new-key tokens are refused and old-key
    tokens still pass, and it does not refetch on an unknown `kid`. A gateway started later
    (what the refetch gives) accepts only the new key."""
    old, new = SigningKey.generate("rot-1"), SigningKey.generate("rot-2")
    issuer = "https://idp.example.test/rotating"
    rule = CallerRule("deployment mnist", jwt=(JwtCaller(issuer),))
    worker = Endpoint("torch", HOST, setup.worker.grpc_port, setup.worker.http_port)

    def token(key: SigningKey) -> str:
        return key.sign({"iss": issuer, "sub": "svc", "exp": int(time.time()) + 3600})

    with serving_jwks([old]) as jwks:
        ir = GatewayIR(
            REGION,
            HOST,
            free_port(),
            (
                DeploymentRoute.local(
                    MODEL,
                    "rotating",
                    (worker,),
                    REGION,
                    VERSION,
                    health_check=CHECKS,
                    access=AccessSettings(
                        callers=(rule,), issuers=(JwtIssuer(issuer, jwks_uri=jwks.uri),)
                    ),
                ),
            ),
        )
        with running_gateway(ir, setup.logs, name="envoy-rotation-1", wait_healthy=True) as gw:
            wait_until(
                lambda: call(gw, "rest", "rotating", token=token(old)).code == "200",
                what="first JWKS fetch",
            )
            fetched = jwks.fetches
            jwks.publish([new])
            for protocol in PROTOCOLS:
                refused = call(gw, protocol, "rotating", token=token(new))
                assert refused.code == CODES[protocol][401], refused
                assert names_deployment(refused, "rotating")
                assert "Jwks doesn't have key to match kid" in refused.message
                assert call(gw, protocol, "rotating", token=token(old)).code == CODES[protocol][200]
            assert jwks.fetches == fetched  # an unknown kid triggers no refetch
        with running_gateway(ir, setup.logs, name="envoy-rotation-2", wait_healthy=True) as gw:
            wait_until(
                lambda: call(gw, "rest", "rotating", token=token(new)).code == "200",
                what="JWKS fetch of the new key",
            )
            for protocol in PROTOCOLS:
                assert call(gw, protocol, "rotating", token=token(new)).code == CODES[protocol][200]
                gone = call(gw, protocol, "rotating", token=token(old))
                assert gone.code == CODES[protocol][401], gone


# --- 6. forged forwards --------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_hop_marker_from_a_client_is_refused(setup: Setup, protocol: str) -> None:
    """Forwarded requests come to the peer listener (mTLS); on the public one the marker is a
    client pretending to be a gateway, credential or not (test_envoy_peer: the peer path)."""
    hop = (
        (wire.HOP_HEADER, "eu-peer"),
        (wire.DEPLOYMENT_HEADER, MODEL),
        (wire.VERSION_HEADER, VERSION),
    )
    for token in (None, setup.keys.token("alice")):
        outcome = refused_without_reaching_worker(
            setup, lambda t=token: call(setup.gw, protocol, "production", token=t, headers=hop)
        )
        assert outcome.code == CODES[protocol][403], outcome
        assert names_deployment(outcome, "production"), outcome.message
        assert "forwarded-to-public-listener" in outcome.message


# --- 7. rate limits ------------------------------------------------------------------------


@dataclass
class LoopResult:
    accepted: dict[str, int]  # per client group
    refused: list[Outcome]
    other: list[Outcome]
    elapsed_s: float


def closed_loop(
    gw: Gateway, protocol: str, environment: str, tokens: Sequence[str | None], run_s: float
) -> LoopResult:
    """RATE_CLIENTS clients, each sending its next request when its answer came, for run_s;
    client i uses tokens[i % len(tokens)] (its group)."""
    accepted = {str(t): 0 for t in tokens}
    refused: list[Outcome] = []
    other: list[Outcome] = []
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + run_s

    def client(token: str | None) -> None:
        def record(outcome: Outcome) -> None:
            with lock:
                if outcome.code == CODES[protocol][200]:
                    accepted[str(token)] += 1
                elif outcome.code == CODES[protocol][429]:
                    if len(refused) < 50:
                        refused.append(outcome)
                else:
                    other.append(outcome)

        if protocol == "rest":
            connection = http.client.HTTPConnection(HOST, gw.port, timeout=10)
            while time.monotonic() < deadline:
                record(rest_call(connection, environment, token=token))
                if connection.sock is None:  # the gateway closed it (local replies do)
                    connection = http.client.HTTPConnection(HOST, gw.port, timeout=10)
            connection.close()
        else:
            with grpc.insecure_channel(gw.address) as channel:
                stub = pb_grpc.GRPCInferenceServiceStub(channel)
                while time.monotonic() < deadline:
                    record(grpc_call(stub, environment, token=token))

    threads = [
        threading.Thread(target=client, args=(tokens[i % len(tokens)],))
        for i in range(RATE_CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoopResult(accepted, refused, other, time.monotonic() - start)


def assert_rate(accepted: int, bucket: TokenBucket, elapsed_s: float) -> None:
    """Accepted = the full bucket at start + the refill over the run: the refill rate must be
    within RATE_TOLERANCE of the limit."""
    rate = (accepted - bucket.burst) / elapsed_s
    limit = bucket.requests_per_second
    assert abs(rate - limit) <= RATE_TOLERANCE * limit, (
        f"{accepted} accepted in {elapsed_s:.2f}s: {rate:.1f}/s beyond the burst of "
        f"{bucket.burst}, limit {limit}/s"
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_deployment_rate_limit(setup: Setup, protocol: str) -> None:
    environment = f"limited-{protocol}"  # a bucket of its own, full at the start
    before = worker_requests(setup.worker)
    result = closed_loop(setup.gw, protocol, environment, [None], RATE_RUN_S)
    accepted = result.accepted["None"]
    assert not result.other, result.other[:3]
    assert result.refused, "the closed loop never exceeded the limit"
    assert_rate(accepted, DEPLOYMENT_RATE, result.elapsed_s)
    assert worker_requests(setup.worker) == before + accepted  # refused ones never reached it
    for outcome in result.refused:
        assert names_deployment(outcome, environment), outcome.message
        assert "rate limit" in outcome.message
        assert outcome.headers.get("retry-after") == "1", outcome.headers


def test_rate_limit_per_principal(setup: Setup) -> None:
    keys = [setup.keys.token("alice"), setup.keys.token("bob")]
    result = closed_loop(setup.gw, "rest", "per-key", keys, RATE_RUN_S)
    assert not result.other, result.other[:3]
    assert result.refused
    for token in keys:
        assert_rate(result.accepted[token], PRINCIPAL_RATE, result.elapsed_s)


# --- 8. no secret in Envoy's config or in the golden files ---------------------------------


def test_config_dump_holds_no_secret(setup: Setup) -> None:
    dump = setup.gw.admin_text("/config_dump")
    assert "meshline.jwt_authn" in dump and "jwks" in dump  # ECDS configs are in the dump
    for name, minted in setup.keys.minted.items():
        assert minted.secret not in dump, f"API key secret {name} in config_dump"
        assert minted.public_key in dump or name == "revoked"  # the public half is expected
    for marker in setup.keys.private_markers:
        assert marker not in dump, "API key private key material in config_dump"
    for key in (setup.idp.inline, setup.idp.remote, setup.idp.stranger):
        for marker in key.private_markers():
            assert marker not in dump, f"private key of {key.kid} in config_dump"
    assert "PRIVATE KEY" not in dump
    assert not JWT_PATTERN.search(dump), JWT_PATTERN.search(dump)


def test_golden_files_hold_no_jwt() -> None:
    golden = Path(__file__).parent / "golden"
    files = sorted(golden.glob("*.yaml"))
    assert files
    for path in files:
        found = JWT_PATTERN.search(path.read_text())
        assert found is None, f"{path.name} holds a JWT: {found.group(0)[:20]}..."
