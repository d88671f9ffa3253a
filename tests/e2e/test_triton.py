"""Triton behind the mesh, end to end: a real tritonserver run by the agent, a Torch worker
of the same model, batching through Envoy, and a Triton that meshline does not run.

One region is enough here (what crosses regions is covered by the global network tests);
the region's real Envoy is between every client and every server.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch

from meshline.inference import grpc_service_pb2_grpc as oip_grpc
from meshline.v1 import api_pb2, resources_pb2
from tests.e2e.conftest import OPEN_ACCESS, local_torch
from tests.harness.load import infer_request, output_array
from tests.harness.mesh import Mesh, running_mesh
from tests.harness.processes import wait_until
from tests.harness.triton import distinct_free_ports, running_triton_worker
from tests.harness.triton_client import triton_infer
from workers.demo import build_mlp

REGION = "eu"
SIGNATURE = """\
      signature:
        inputs: [{name: input, datatype: FP32, shape: [-1, 784]}]
        outputs: [{name: output, datatype: FP32, shape: [-1, 10]}]"""


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with running_mesh(tmp_path_factory.mktemp("mesh"), regions=(REGION,)) as m:
        m.apply(
            "kind: Environment\nmetadata: {name: production}\n"
            f"spec:\n  policies:\n    - {OPEN_ACCESS}\n"
        )
        yield m


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mlp(tmp_path_factory.mktemp("models") / "mlp.pt", seed=5)


def _batch(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, 784)).astype(np.float32)


def _region_status(mesh: Mesh, name: str) -> resources_pb2.RegionDeploymentStatus:
    regions = [r for r in mesh.deployment(name).status.regions if r.region == REGION]
    assert regions, mesh.deployment(name).status
    return regions[0]


def _delete(mesh: Mesh, *names: str) -> None:
    """Delete what is still there (a test may have deleted some itself)."""
    for name in names:
        try:
            mesh.deployments.DeleteDeployment(
                api_pb2.DeleteDeploymentRequest(name=name), timeout=10
            )
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise


def _grpc_infer(gateway: str, deployment: str, batch: np.ndarray) -> np.ndarray:
    with grpc.insecure_channel(gateway) as channel:
        response = oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            infer_request(deployment, batch),
            metadata=(("x-meshline-deployment", deployment),),
            timeout=20,
        )
    return output_array(response)


def test_triton_and_torch_deployments_of_one_model_answer_alike(
    mesh: Mesh, model_path: Path
) -> None:
    mesh.apply(f"""\
kind: Model
metadata: {{name: mlp}}
spec:
  versions:
    - name: on-torch
      runtime: torch
      path: {model_path}
{SIGNATURE}
    - name: on-triton
      runtime: triton
      path: {model_path}
{SIGNATURE}
---
kind: Deployment
metadata: {{name: mlp-torch}}
spec: {{environment: production, model: mlp, version: on-torch, replicas: 1}}
---
kind: Deployment
metadata: {{name: mlp-triton}}
spec:
  environment: production
  model: mlp
  version: on-triton
  replicas: 1
  batching: {{max_batch_size: 8, max_delay_ms: 2}}
""")
    try:
        mesh.wait_ready("mlp-torch")
        mesh.wait_ready("mlp-triton", timeout_s=180)  # tritonserver takes seconds to start
        gateway = mesh.gateway(REGION)
        batch = _batch(3, seed=11)
        expected = local_torch(model_path, torch.from_numpy(batch)).numpy()
        answers: dict[str, dict[str, np.ndarray | str]] = {}
        for name in ("mlp-torch", "mlp-triton"):
            answers[name] = triton_infer(
                gateway, name, batch, headers={"x-meshline-deployment": name}
            )
            assert set(answers[name]) == {"grpc", "http-binary", "http-json"}
            for case, output in answers[name].items():
                assert not isinstance(output, str), (name, case, output)
                np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-5)
        for case in ("grpc", "http-binary", "http-json"):
            np.testing.assert_allclose(
                answers["mlp-triton"][case], answers["mlp-torch"][case], rtol=1e-5, atol=1e-5
            )
        # Model metadata: the same name and tensors; platform and versions differ as the README
        # says (Triton names its backend and numbers its versions).
        meta = {}
        for name in ("mlp-torch", "mlp-triton"):
            with urllib.request.urlopen(f"http://{gateway}/v2/models/{name}", timeout=10) as r:
                meta[name] = json.load(r)
            assert meta[name]["name"] == name
        for tensors in ("inputs", "outputs"):
            assert meta["mlp-torch"][tensors] == meta["mlp-triton"][tensors]
        assert (meta["mlp-torch"]["platform"], meta["mlp-torch"]["versions"]) == (
            "pytorch_libtorch",
            ["on-torch"],
        )
        assert (meta["mlp-triton"]["platform"], meta["mlp-triton"]["versions"]) == ("python", ["1"])
        # The agent scraped Triton's own metrics and reported them: 3 requests answered.
        wait_until(
            lambda: _region_status(mesh, "mlp-triton").requests >= 3,
            30,
            "Triton's request count to reach the deployment status",
        )
        status = _region_status(mesh, "mlp-triton")
        assert status.batches >= 1 and status.queued_requests == 0
        # The generated model repository lives in the worker's own folder, gone with it.
        workers_dir = mesh.state_dir / REGION / "workers"
        assert list(workers_dir.glob("*/model-repository"))
        _delete(mesh, "mlp-triton")
        wait_until(
            lambda: not list(workers_dir.glob("*/model-repository")),
            60,
            "the retired Triton worker's repository to be removed",
        )
    finally:
        _delete(mesh, "mlp-torch", "mlp-triton")


def test_batching_set_on_the_deployment_merges_requests_behind_envoy(
    mesh: Mesh, model_path: Path
) -> None:
    mesh.apply(f"""\
kind: Model
metadata: {{name: mlp-batched}}
spec:
  versions:
    - name: v1
      runtime: torch
      path: {model_path}
{SIGNATURE}
---
kind: Deployment
metadata: {{name: batched}}
spec:
  environment: production
  model: mlp-batched
  version: v1
  replicas: 1
  batching: {{max_batch_size: 32, max_delay_ms: 20}}
""")
    try:
        mesh.wait_ready("batched")
        gateway = mesh.gateway(REGION)
        inputs = [_batch(1 + i % 3, seed=100 + i) for i in range(48)]
        with ThreadPoolExecutor(max_workers=16) as pool:
            outputs = list(pool.map(lambda b: _grpc_infer(gateway, "batched", b), inputs))
        for batch, output in zip(inputs, outputs, strict=True):
            expected = local_torch(model_path, torch.from_numpy(batch)).numpy()
            np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-5)

        def merged() -> bool:
            status = _region_status(mesh, "batched")
            return status.requests >= len(inputs) and status.batches < status.requests

        wait_until(merged, 30, "the worker's metrics to show merged forward passes")
    finally:
        _delete(mesh, "batched")


def test_bring_your_own_triton_is_routed_checked_and_dropped_when_it_stops(
    mesh: Mesh, model_path: Path, tmp_path: Path
) -> None:
    grpc_port, http_port, metrics_port = distinct_free_ports(3)
    host = "127.0.0.1"
    document = f"""\
kind: Model
metadata: {{name: byo-model}}
spec:
  versions:
    - name: v1
      runtime: triton
      external:
        grpc_address: {host}:{grpc_port}
        http_address: {host}:{http_port}
        metrics_address: {host}:{metrics_port}
{SIGNATURE}
---
kind: Deployment
metadata: {{name: byo}}
spec: {{environment: production, model: byo-model, version: v1, replicas: 1}}
"""
    batch = _batch(2, seed=3)
    expected = local_torch(model_path, torch.from_numpy(batch)).numpy()
    try:
        with running_triton_worker(
            tmp_path, model_path, model_name="byo", ports=(grpc_port, http_port, metrics_port)
        ):
            mesh.apply(document)
            mesh.wait_ready("byo")
            gateway = mesh.gateway(REGION)
            results = triton_infer(gateway, "byo", batch, headers={"x-meshline-deployment": "byo"})
            for case, output in results.items():
                assert not isinstance(output, str), (case, output)
                np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-5)
            hosts = mesh.gateway_hosts(REGION, "byo.production.grpc")
            assert list(hosts.values()) == ["healthy"], hosts  # one endpoint: the external one

        # The server is gone: the agent says why, Envoy drops it, callers get a clear error.
        def says_why() -> bool:
            status = mesh.deployment("byo").status
            return status.phase != "Ready" and f"{host}:{grpc_port} unreachable" in status.message

        wait_until(says_why, 30, "the deployment to leave Ready, naming the stopped server")
        with pytest.raises(grpc.RpcError) as caught:
            _grpc_infer(gateway, "byo", batch)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        # It comes back on the same address: routed again without any change to meshline.
        with running_triton_worker(
            tmp_path, model_path, model_name="byo", ports=(grpc_port, http_port, metrics_port)
        ):
            mesh.wait_ready("byo")
            np.testing.assert_allclose(
                _grpc_infer(gateway, "byo", batch), expected, rtol=1e-5, atol=1e-5
            )
    finally:
        _delete(mesh, "byo")


def test_a_triton_version_that_cannot_load_is_failed_with_the_cause(
    mesh: Mesh, model_path: Path, tmp_path: Path
) -> None:
    """A corrupt artifact: Triton exits, the agent's backoff restarts it, and status says why
    (the file and Triton's own words), while the deployment's working version keeps serving."""
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a TorchScript archive")
    mesh.apply(f"""\
kind: Model
metadata: {{name: mlp-broken}}
spec:
  versions:
    - name: good
      runtime: triton
      path: {model_path}
{SIGNATURE}
    - name: broken
      runtime: triton
      path: {broken}
{SIGNATURE}
---
kind: Deployment
metadata: {{name: broken}}
spec: {{environment: production, model: mlp-broken, version: good, replicas: 1}}
""")
    try:
        mesh.wait_ready("broken", timeout_s=180)
        gateway = mesh.gateway(REGION)
        batch = _batch(1, seed=9)
        expected = local_torch(model_path, torch.from_numpy(batch)).numpy()
        mesh.apply(
            "kind: Deployment\nmetadata: {name: broken}\n"
            "spec: {environment: production, model: mlp-broken, version: broken, replicas: 1}\n"
        )

        def rolled_back() -> bool:
            return "rolled back" in mesh.deployment("broken").status.message

        # Failed ("keeps crashing") first; three failed starts in a row then roll it back, and
        # the good version keeps serving (Ready again, the reason kept in the message).
        wait_until(rolled_back, 120, "the crash-looping Triton version to be rolled back")
        message = mesh.deployment("broken").status.message
        # Workers load the registry's content-addressed copy of the file.
        artifact = f"artifacts/sha256/{hashlib.sha256(broken.read_bytes()).hexdigest()}"
        assert "version 'broken' rolled back" in message, message
        assert "failed to start 3 times in a row" in message and artifact in message, message
        assert "not a loadable TorchScript archive" in message, message
        # Make-before-break: the good version's Triton was never drained.
        np.testing.assert_allclose(
            _grpc_infer(gateway, "broken", batch), expected, rtol=1e-5, atol=1e-5
        )
    finally:
        _delete(mesh, "broken")
