"""IAM at the edge, end to end: API keys, access and rate policies, enforced by each region's
real Envoy in front of real Torch workers, with the real control plane.

Every deployment runs in HOME only (a `location` policy), so the other region's gateway
forwards to it: each check is made at both gateways, the entry one that runs it and the one
that forwards. A refused request must never reach a worker: the workers' own request counter
(read from each worker's /metrics, not the agent's scrape) must not move for one.
"""

from __future__ import annotations

import json
import time
import urllib.error
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import yaml

from meshline import wire
from meshline.inference import grpc_service_pb2_grpc as oip_grpc
from meshline.v1 import api_pb2
from tests.e2e.conftest import deployment_yaml
from tests.harness.load import ClientLoop, infer_request, rest_infer
from tests.harness.mesh import Mesh, running_mesh
from tests.harness.processes import wait_until
from workers.demo import build_mlp

HOME = "eu"  # the one region that runs the deployments
REGIONS = ("eu", "us")
BATCH = np.random.default_rng(0).random((1, 784), dtype=np.float32)
# An environment with no access policy: any API key whose scope covers the deployment.
KEYED = "iam-keyed"
# An environment whose mandatory access rule wants role `ml`.
ML_ONLY = "iam-ml"
SHARED = "gate"  # the deployment tests that do not change it share (tests 1, 2, 4)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with running_mesh(tmp_path_factory.mktemp("mesh"), regions=REGIONS) as m:
        yield m


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mlp(tmp_path_factory.mktemp("models") / "mlp.pt", seed=0)


@pytest.fixture(scope="module")
def gate(mesh: Mesh, model: Path) -> Iterator[str]:
    """A deployment in KEYED, in HOME only, left as it is by the tests that use it."""
    mesh.apply(_environment(KEYED) + _deployment(SHARED, KEYED, model))
    try:
        _wait_current(mesh, SHARED, KEYED)
        yield SHARED
    finally:
        _delete(mesh, SHARED, KEYED)


# -- documents ------------------------------------------------------------------------------


def _environment(name: str, policies: Sequence[dict[str, Any]] = ()) -> str:
    doc = {"kind": "Environment", "metadata": {"name": name}, "spec": {"policies": list(policies)}}
    return yaml.safe_dump(doc) + "---\n"


def _deployment(
    name: str, environment: str, model: Path, policies: Sequence[dict[str, Any]] = ()
) -> str:
    """The e2e suite's model and deployment (in HOME only), with `policies` added; without its
    open environment (conftest's lets anyone in)."""
    docs = [
        d
        for d in yaml.safe_load_all(
            deployment_yaml(name, {"v1": model}, "v1", [HOME], environment=environment)
        )
        if d["kind"] != "Environment"
    ]
    for doc in docs:
        if doc["kind"] == "Deployment":
            doc["spec"]["policies"].extend(policies)
    return yaml.safe_dump_all(docs)


def _delete(mesh: Mesh, name: str, environment: str) -> None:
    mesh.deployments.DeleteDeployment(
        api_pb2.DeleteDeploymentRequest(name=name, environment=environment), timeout=10
    )


def _wait_current(mesh: Mesh, name: str, environment: str, timeout_s: float = 120) -> float:
    """Wait until the status says Ready for the deployment's latest change (its generation);
    the monotonic time it was seen so."""

    def current() -> bool:
        deployment = mesh.deployment(name, environment)
        status = deployment.status
        return (
            status.phase == "Ready" and status.observed_generation >= deployment.metadata.generation
        )

    try:
        wait_until(current, timeout_s, f"{name} Ready at its latest generation")
    except TimeoutError:
        raise TimeoutError(f"{mesh.deployment(name, environment).status}\n{mesh.logs()}") from None
    return time.monotonic()


def _wait_enforced(mesh: Mesh, key: str, timeout_s: float = 30) -> float:
    """Wait until every region's gateway enforces the key's current state; the monotonic time
    it was seen so."""

    def enforced() -> bool:
        status = mesh.key(key).status
        return set(status.enforced_in) == set(REGIONS) and not status.pending_in

    wait_until(enforced, timeout_s, f"key {key} enforced in {REGIONS}")
    return time.monotonic()


# -- requests -------------------------------------------------------------------------------


def _bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def _rest(
    gateway: str, deployment: str, environment: str, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """(HTTP status, body) of one REST inference through `gateway`."""
    try:
        rest_infer(
            gateway,
            deployment,
            BATCH,
            timeout_s=10,
            headers={wire.ENVIRONMENT_HEADER: environment, **(headers or {})},
        )
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    return 200, ""


def _grpc(
    gateway: str, deployment: str, environment: str, headers: dict[str, str] | None = None
) -> tuple[grpc.StatusCode, str]:
    """(gRPC status, details) of one ModelInfer through `gateway`."""
    metadata = (
        (wire.DEPLOYMENT_HEADER, deployment),
        (wire.ENVIRONMENT_HEADER, environment),
        *(headers or {}).items(),
    )
    with grpc.insecure_channel(gateway) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        try:
            stub.ModelInfer(infer_request(deployment, BATCH), metadata=metadata, timeout=10)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


REST_OF = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
}


def _answers(
    mesh: Mesh, deployment: str, environment: str, headers: dict[str, str] | None = None
) -> dict[str, tuple[int, grpc.StatusCode]]:
    """region → (REST status, gRPC status) of one request of each protocol at its gateway;
    a refusal must name the deployment."""
    out = {}
    for region in REGIONS:
        gateway = mesh.gateway(region)
        code, body = _rest(gateway, deployment, environment, headers)
        status, details = _grpc(gateway, deployment, environment, headers)
        if code != 200:
            assert deployment in body, body
        if status != grpc.StatusCode.OK:
            assert deployment in details, details
        out[region] = (code, status)
    return out


def _everywhere(answer: grpc.StatusCode) -> dict[str, tuple[int, grpc.StatusCode]]:
    return {region: (REST_OF[answer], answer) for region in REGIONS}


# -- 1. no access policy: an API key in scope -----------------------------------------------


def test_without_an_access_policy_a_key_in_scope_is_needed_at_both_gateways(
    mesh: Mesh, gate: str
) -> None:
    before = mesh.worker_requests(HOME, gate)
    assert _answers(mesh, gate, KEYED) == _everywhere(grpc.StatusCode.UNAUTHENTICATED)
    # Not a token the control plane made: refused as no credential, not taken as anonymous.
    assert _answers(mesh, gate, KEYED, _bearer("not-a-key")) == _everywhere(
        grpc.StatusCode.UNAUTHENTICATED
    )
    # A real key whose scope is another deployment of the environment: valid, not allowed.
    elsewhere = mesh.create_key("gate-elsewhere", environment=KEYED, deployments=["other"])
    _wait_enforced(mesh, "gate-elsewhere")
    assert _answers(mesh, gate, KEYED, _bearer(elsewhere)) == _everywhere(
        grpc.StatusCode.PERMISSION_DENIED
    )
    # None of the refused requests reached a worker.
    assert mesh.worker_requests(HOME, gate) == before

    secret = mesh.create_key("gate-ci", environment=KEYED)
    _wait_enforced(mesh, "gate-ci")
    principals = mesh.worker_principals(HOME, gate).get("gate-ci", 0)
    assert _answers(mesh, gate, KEYED, _bearer(secret)) == _everywhere(grpc.StatusCode.OK)
    # Served, REST and gRPC at both gateways, forwarded ones too; each worker saw the key's name
    # as the principal, the one the forwarding gateway's entry set.
    assert mesh.worker_requests(HOME, gate) == before + 2 * len(REGIONS)
    assert mesh.worker_principals(HOME, gate).get("gate-ci", 0) == principals + 2 * len(REGIONS)


# -- 2. revocation under load ---------------------------------------------------------------


def test_a_revoked_key_is_refused_everywhere_once_enforced_and_other_keys_never_fail(
    mesh: Mesh, gate: str
) -> None:
    kept = mesh.create_key("rv-kept", environment=KEYED)
    gone = mesh.create_key("rv-gone", environment=KEYED)
    _wait_enforced(mesh, "rv-kept")
    _wait_enforced(mesh, "rv-gone")
    far = mesh.gateway("us")  # forwards to HOME

    def client(gateway: str, secret: str, rest: bool = False) -> ClientLoop:
        auth = tuple(_bearer(secret).items())
        return ClientLoop(
            gateway, gate, BATCH, KEYED, concurrency=1, extra_metadata=auth, rest=rest
        )

    loops = {
        "kept": client(far, kept),
        # The revoked key at each gateway, gRPC at one and REST at the other.
        "eu": client(mesh.gateway("eu"), gone),
        "us": client(far, gone, rest=True),
    }
    with loops["kept"], loops["eu"], loops["us"]:
        wait_until(lambda: all(loop.count() >= 10 for loop in loops.values()), 60, "steady traffic")
        revoking = time.monotonic()
        mesh.keys.RevokeKey(api_pb2.RevokeKeyRequest(name="rv-gone"), timeout=10)
        revoked = time.monotonic()
        enforced = _wait_enforced(mesh, "rv-gone")
        wait_until(
            lambda: (
                all(any(f.sent >= enforced for f in loops[region].failed) for region in REGIONS)
                and sum(a.sent >= enforced for a in loops["kept"].answers) >= 10
            ),
            30,
            "refusals of the revoked key and answers to the other one after enforcement",
        )
    assert loops["kept"].failures == []
    for region in REGIONS:
        loop = loops[region]
        # Nothing failed before the revocation, everything after it failed as unauthenticated,
        # and not one request sent after every region enforced it was accepted.
        assert all(f.sent >= revoking for f in loop.failed), loop.failures[:3]
        assert {f.reason.split(":")[0] for f in loop.failed} <= {"UNAUTHENTICATED", "HTTP 401"}
        assert [a for a in loop.answers if a.sent >= enforced] == []
        first = min(f.done for f in loop.failed)
        print(f"revocation: first refusal at {region} {first - revoked:.3f}s after RevokeKey")
    print(f"revocation: every region enforcing seen {enforced - revoked:.3f}s after RevokeKey")


# -- 3. mandatory environment rule and deployment rule ---------------------------------------

# Key name → its roles; the environment wants role `ml`, the deployment names alice and carol.
ML_KEYS = {"alice": [], "bob": ["ml"], "carol": ["ml"], "dave": ["ops"]}
# What each gets: only carol passes both rules.
ML_ANSWERS = {
    "alice": grpc.StatusCode.PERMISSION_DENIED,  # named by the deployment, not in role ml
    "bob": grpc.StatusCode.PERMISSION_DENIED,  # in role ml, not named by the deployment
    "carol": grpc.StatusCode.OK,  # both
    "dave": grpc.StatusCode.PERMISSION_DENIED,  # neither
}


def test_a_mandatory_environment_rule_and_the_deployment_rule_must_both_allow(
    mesh: Mesh, model: Path
) -> None:
    name = "both"
    mandatory = {"mode": "mandatory", "access": {"roles": ["ml"]}}
    mesh.apply(
        _environment(ML_ONLY, [mandatory])
        + _deployment(name, ML_ONLY, model, [{"access": {"keys": ["alice", "carol"]}}])
    )
    try:
        secrets = {
            key: mesh.create_key(key, environment=ML_ONLY, roles=roles)
            for key, roles in ML_KEYS.items()
        }
        for key in ML_KEYS:
            _wait_enforced(mesh, key)
        _wait_current(mesh, name, ML_ONLY)
        before = mesh.worker_principals(HOME, name)
        got = {key: _answers(mesh, name, ML_ONLY, _bearer(s)) for key, s in secrets.items()}
        assert got == {key: _everywhere(answer) for key, answer in ML_ANSWERS.items()}
        assert _answers(mesh, name, ML_ONLY) == _everywhere(grpc.StatusCode.UNAUTHENTICATED)
        # Only carol's requests reached a worker.
        after = mesh.worker_principals(HOME, name)
        assert {p: n - before.get(p, 0) for p, n in after.items() if n != before.get(p, 0)} == {
            "carol": 2 * len(REGIONS)
        }
        # The plan lists both access rules, with where each came from, neither overridden.
        plan = mesh.deployment(name, ML_ONLY).status.plan
        access = {
            (p.source, json.dumps(list(p.policy.access.roles) + list(p.policy.access.keys)))
            for p in plan.policies
            if p.policy.HasField("access") and not p.overridden_by
        }
        assert access == {
            (f"environment '{ML_ONLY}' mandatory", json.dumps(["ml"])),
            (f"deployment '{name}'", json.dumps(["alice", "carol"])),
        }
    finally:
        _delete(mesh, name, ML_ONLY)


# -- 4. a client posing as a gateway ---------------------------------------------------------


def test_a_client_sent_hop_marker_is_never_served_without_a_credential(
    mesh: Mesh, gate: str, model: Path
) -> None:
    forged = {
        wire.HOP_HEADER: "us",
        wire.DEPLOYMENT_HEADER: gate,
        wire.ENVIRONMENT_HEADER: KEYED,
        wire.VERSION_HEADER: "v1",
        wire.PRINCIPAL_HEADER: "admin",
    }
    before = mesh.worker_requests(HOME, gate)
    for region in REGIONS:
        gateway = mesh.gateway(region)
        code, body = _rest(gateway, gate, KEYED, forged)
        assert code in (401, 403), (region, code, body)
        status, details = _grpc(gateway, gate, KEYED, forged)
        assert status in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED), (
            region,
            status,
            details,
        )
    assert mesh.worker_requests(HOME, gate) == before
    # With a real key: refused as a forged forward, or served as an entry request; either way
    # no worker sees the principal the client wrote.
    secret = mesh.create_key("hop-key", environment=KEYED)
    _wait_enforced(mesh, "hop-key")
    for region in REGIONS:
        gateway = mesh.gateway(region)
        code, _ = _rest(gateway, gate, KEYED, {**forged, **_bearer(secret)})
        assert code in (200, 403)
        status, _ = _grpc(gateway, gate, KEYED, {**forged, **_bearer(secret)})
        assert status in (grpc.StatusCode.OK, grpc.StatusCode.PERMISSION_DENIED)
    # A client-sent principal alone: without a key it is no credential; with one, the worker
    # sees the key's name.
    posing = {wire.PRINCIPAL_HEADER: "admin"}
    assert _answers(mesh, gate, KEYED, posing) == _everywhere(grpc.StatusCode.UNAUTHENTICATED)
    assert _answers(mesh, gate, KEYED, {**posing, **_bearer(secret)}) == _everywhere(
        grpc.StatusCode.OK
    )
    principals = mesh.worker_principals(HOME, gate)
    assert "admin" not in principals
    served = principals.get("hop-key", 0)
    assert served >= 2 * len(REGIONS)
    assert mesh.worker_requests(HOME, gate) == before + served
    # Where anonymous callers get in, the principal a client writes does not travel either.
    mesh.apply(_deployment("open-door", KEYED, model, [{"access": {"anonymous": True}}]))
    try:
        _wait_current(mesh, "open-door", KEYED)
        assert _answers(mesh, "open-door", KEYED, posing) == _everywhere(grpc.StatusCode.OK)
        assert mesh.worker_principals(HOME, "open-door") == {"anonymous": 2 * len(REGIONS)}
    finally:
        _delete(mesh, "open-door", KEYED)


# -- 5. a rate limit comes and goes under load ----------------------------------------------


def test_a_rate_limit_applied_and_lifted_under_load_drops_nothing_else(
    mesh: Mesh, model: Path
) -> None:
    name = "rated"
    secret = mesh.create_key("rate-key", environment=KEYED)
    mesh.apply(_environment(KEYED) + _deployment(name, KEYED, model))
    try:
        _wait_enforced(mesh, "rate-key")
        _wait_current(mesh, name, KEYED)
        auth = tuple(_bearer(secret).items())
        far = mesh.gateway("us")
        with ClientLoop(far, name, BATCH, KEYED, concurrency=2, extra_metadata=auth) as loop:
            wait_until(lambda: loop.count() >= 10, 60, "steady traffic")
            rate = {"rate": {"deployment": {"requests_per_second": 2, "burst": 2}}}
            mesh.apply(_deployment(name, KEYED, model, [rate]))
            limited = _wait_current(mesh, name, KEYED)
            wait_until(
                lambda: any(f.sent >= limited for f in loop.failed), 10, "the limit to refuse"
            )
            mesh.apply(_deployment(name, KEYED, model))
            lifted = _wait_current(mesh, name, KEYED)
            wait_until(
                lambda: sum(a.sent >= lifted for a in loop.answers) >= 20,
                30,
                "answers after the limit is lifted",
            )
        # Nothing failed but for the limit, and nothing at all once it was lifted.
        assert {f.reason.split(":")[0] for f in loop.failed} == {"RESOURCE_EXHAUSTED"}
        assert [f for f in loop.failed if f.sent >= lifted] == []
    finally:
        _delete(mesh, name, KEYED)


# -- 6. Ready means enforced ----------------------------------------------------------------


def test_once_ready_a_changed_access_rule_holds_on_the_next_request_at_both_gateways(
    mesh: Mesh, model: Path
) -> None:
    name = "swap"
    first = mesh.create_key("swap-first", environment=KEYED)
    second = mesh.create_key("swap-second", environment=KEYED)
    mesh.apply(
        _environment(KEYED)
        + _deployment(name, KEYED, model, [{"access": {"keys": ["swap-first"]}}])
    )
    try:
        _wait_enforced(mesh, "swap-first")
        _wait_enforced(mesh, "swap-second")
        _wait_current(mesh, name, KEYED)
        assert _answers(mesh, name, KEYED, _bearer(first)) == _everywhere(grpc.StatusCode.OK)
        assert _answers(mesh, name, KEYED, _bearer(second)) == _everywhere(
            grpc.StatusCode.PERMISSION_DENIED
        )
        mesh.apply(_deployment(name, KEYED, model, [{"access": {"keys": ["swap-second"]}}]))
        _wait_current(mesh, name, KEYED)
        # No polling of the data plane: Ready means every gateway holds the new rule.
        assert _answers(mesh, name, KEYED, _bearer(second)) == _everywhere(grpc.StatusCode.OK)
        assert _answers(mesh, name, KEYED, _bearer(first)) == _everywhere(
            grpc.StatusCode.PERMISSION_DENIED
        )
    finally:
        _delete(mesh, name, KEYED)
