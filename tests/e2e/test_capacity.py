"""Many models on one machine, end to end: serverless deployments start nothing until
invoked, a region runs only what fits its memory budget (the reason named in status), and
idle workers are stopped least recently used first to make room, with no request cut.

Real control plane, Envoy gateways and Torch workers (module mesh: regions eu and us); the
memory figures are the agents' real measurements of real worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch

from meshline.inference import grpc_service_pb2_grpc as oip_grpc
from meshline.v1 import api_pb2, resources_pb2
from tests.e2e.conftest import OPEN_ACCESS, deployment_yaml, local_torch
from tests.harness.load import ClientLoop, infer_request, output_array
from tests.harness.mesh import Mesh
from tests.harness.processes import wait_until

MANY = 200


def _batch(seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, 784)).astype(np.float32)


def _infer(mesh: Mesh, region: str, deployment: str, timeout: float = 60) -> np.ndarray:
    with grpc.insecure_channel(mesh.gateway(region)) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        response = stub.ModelInfer(
            infer_request(deployment, _batch()),
            metadata=(("x-meshline-deployment", deployment),),
            timeout=timeout,
        )
    return output_array(response)


def _region(dep: resources_pb2.Deployment, name: str) -> resources_pb2.RegionDeploymentStatus:
    return next(r for r in dep.status.regions if r.region == name)


def _delete(mesh: Mesh, *names: str) -> None:
    mesh.delete_deployments(names)


def _set_budget(mesh: Mesh, region: str, budget: str) -> None:
    current = mesh.region(region)
    changed = resources_pb2.Region(metadata=resources_pb2.ObjectMeta(name=region))
    changed.spec.CopyFrom(current.spec)
    changed.spec.memory_budget = budget
    mesh.apply_resources([api_pb2.Resource(region=changed)])


def _footprint(mesh: Mesh, model: str) -> int:
    """The measured footprint of the model's v1 (0 until a serving worker was measured)."""
    reply = mesh.models.GetModel(api_pb2.GetModelRequest(name=model), timeout=10)
    return int(reply.model.spec.versions[0].footprint.memory_bytes)


@pytest.fixture
def budget_restored(mesh: Mesh) -> Iterator[None]:
    before = mesh.region("eu").spec.memory_budget
    try:
        yield
    finally:
        _set_budget(mesh, "eu", before)


MIB = 2**20
# What each worker of these tests declares (resources.memory): a real Torch worker of the demo
# MLP measures well below it, so admission plans every worker at exactly this.
DECLARED = 512 * MIB


def _neighbour(mesh: Mesh, models: dict[str, Path], name: str) -> int:
    """Deployment `name` (one worker in eu, declaring DECLARED) serving, alone in eu: eu's
    memory used (exactly DECLARED once no other worker is left there)."""
    mesh.apply(deployment_yaml(name, {"v1": models["v1"]}, "v1", ["eu"], memory="512Mi"))
    mesh.wait_ready(name, replicas=1)
    _infer(mesh, "eu", name)

    def alone() -> bool:
        capacity = mesh.region("eu").status.capacity
        return capacity.workers == 1 and capacity.memory_used_bytes == DECLARED

    wait_until(alone, 60, f"{name} alone in eu, planned at its declared memory")
    return DECLARED


def test_a_region_whose_budget_is_full_starts_no_worker_and_says_why(
    mesh: Mesh, models: dict[str, Path], budget_restored: None
) -> None:
    try:
        used = _neighbour(mesh, models, "roomy")
        # The agent measured the real worker: its version's footprint is recorded.
        wait_until(lambda: _footprint(mesh, "mlp-roomy") > 0, 60, "the version's footprint")
        assert _footprint(mesh, "mlp-roomy") < DECLARED
        capacity = mesh.region("eu").status.capacity
        assert capacity.memory_total_bytes > 0 and capacity.cpus >= 1
        # Room for half a worker more.
        _set_budget(mesh, "eu", f"{(used + DECLARED // 2) // MIB}Mi")
        mesh.apply(deployment_yaml("cramped", {"v1": models["v1"]}, "v1", ["eu"], memory="512Mi"))

        def pending() -> bool:
            dep = mesh.deployment("cramped")
            assert not mesh.worker_pids("eu", "cramped"), "a worker started past the budget"
            return dep.status.phase == "Pending" and "memory budget" in dep.status.message

        wait_until(pending, 60, "cramped Pending for want of memory")
        dep = mesh.deployment("cramped")
        eu = _region(dep, "eu")
        assert eu.pending_reason == (
            "region 'eu' has 256 MiB free of its 768 MiB memory budget, version 'v1' needs "
            "512 MiB: 0 of 1 wanted workers run"
        )
        assert eu.pending_reason in dep.status.message
        for _ in range(10):  # several agent reports and rebuilds later: still nothing started
            assert not mesh.worker_pids("eu", "cramped")
            assert mesh.deployment("cramped").status.phase == "Pending"
        # The neighbour never noticed.
        _infer(mesh, "eu", "roomy")
        # Room again (the default budget): it starts.
        _set_budget(mesh, "eu", "")
        mesh.wait_ready("cramped", replicas=1)
        assert _region(mesh.deployment("cramped"), "eu").pending_reason == ""
    finally:
        _delete(mesh, "roomy", "cramped")


def test_an_idle_worker_is_stopped_least_recently_used_first_to_make_room_cutting_nothing(
    mesh: Mesh, models: dict[str, Path], budget_restored: None
) -> None:
    scaling = (
        "{min_replicas: 0, max_replicas: 1, scale_to_zero_after: 600, stable_window: 1, "
        "panic_window: 0.5}"
    )
    v1 = {"v1": models["v1"]}
    try:
        used = _neighbour(mesh, models, "steady")
        # Room for one worker and a half beside the neighbour.
        _set_budget(mesh, "eu", f"{(used + DECLARED * 3 // 2) // MIB}Mi")
        for name in ("early", "late"):
            mesh.apply(deployment_yaml(name, v1, "v1", ["eu"], scaling=scaling, memory="512Mi"))
        mesh.wait_ready("early")  # at zero: its gateway has the route (to the activator)
        mesh.wait_ready("late")
        expected = local_torch(models["v1"], torch.from_numpy(_batch())).numpy()
        np.testing.assert_allclose(_infer(mesh, "eu", "early"), expected, rtol=1e-5, atol=1e-5)
        assert len(mesh.worker_pids("eu", "early")) == 1
        with ClientLoop(mesh.gateway("eu"), "steady", _batch(), concurrency=2) as neighbour:
            # late's first request: no room until early (idle) is stopped, drained first.
            out = _infer(mesh, "eu", "late")
            wait_until(lambda: neighbour.ok > 20, 30, "the neighbour's requests flowing")
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
        assert neighbour.failures == [], neighbour.failures[:5]
        wait_until(lambda: not mesh.worker_pids("eu", "early"), 30, "early's worker to exit")
        wait_until(
            lambda: _region(mesh.deployment("early"), "eu").scaled_to_zero, 30, "early at zero"
        )
        assert mesh.deployment("early").status.phase == "Ready"  # at zero on purpose
        # It wakes again on its next request (stopping late, now the least recently used).
        np.testing.assert_allclose(_infer(mesh, "eu", "early"), expected, rtol=1e-5, atol=1e-5)
        wait_until(lambda: not mesh.worker_pids("eu", "late"), 30, "late's worker to exit")
    finally:
        _delete(mesh, "steady", "early", "late")


def test_a_request_for_a_deployment_without_room_is_told_why_at_its_cold_start_timeout(
    mesh: Mesh, models: dict[str, Path], budget_restored: None
) -> None:
    _set_budget(mesh, "eu", "1Mi")
    scaling = "{min_replicas: 0, max_replicas: 1, cold_start_timeout: 2}"
    mesh.apply(deployment_yaml("roomless", {"v1": models["v1"]}, "v1", ["eu"], scaling=scaling))
    try:
        mesh.wait_ready("roomless")  # at zero: Ready, nothing runs
        with pytest.raises(grpc.RpcError) as caught:
            _infer(mesh, "eu", "roomless")
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        details = caught.value.details() or ""
        assert "deployment 'roomless'" in details and "cold_start_timeout 2 s" in details
        assert "region 'eu' has 1 MiB free of its 1 MiB memory budget" in details, details
        assert details.endswith("it starts once the region has room, retry later"), details
        assert not mesh.worker_pids("eu", "roomless")
        assert "memory budget" in mesh.deployment("roomless").status.message
    finally:
        _delete(mesh, "roomless")


def _many_yaml(path: Path, names: list[str]) -> str:
    head = f"""\
kind: Environment
metadata: {{name: production}}
spec:
  policies:
    - {OPEN_ACCESS}
---
kind: Model
metadata: {{name: mlp-many}}
spec:
  versions:
    - name: v1
      runtime: torch
      path: {path}
      signature:
        inputs: [{{name: input, datatype: FP32, shape: [-1, 784]}}]
        outputs: [{{name: output, datatype: FP32, shape: [-1, 10]}}]
"""
    deployments = [
        f"""---
kind: Deployment
metadata: {{name: {name}}}
spec:
  environment: production
  model: mlp-many
  version: v1
  scaling: {{min_replicas: 0, max_replicas: 1, scale_to_zero_after: 2}}
"""
        for name in names
    ]
    return head + "".join(deployments)


def test_many_serverless_deployments_start_nothing_and_each_answers_its_first_call(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    names = [f"many-{i:03d}" for i in range(MANY)]
    mesh.apply(_many_yaml(models["v1"], names), timeout_s=120)
    try:

        def all_at_zero() -> bool:
            reply = mesh.deployments.ListDeployments(
                api_pb2.ListDeploymentsRequest(environment="production"), timeout=30
            )
            mine = [d for d in reply.deployments if d.metadata.name.startswith("many-")]
            return len(mine) == MANY and all(
                d.status.phase == "Ready"
                and all(r.scaled_to_zero and r.current_replicas == 0 for r in d.status.regions)
                for d in mine
            )

        wait_until(all_at_zero, 180, f"{MANY} deployments Ready at zero")
        for region in ("eu", "us"):
            assert mesh.worker_pids(region, "many-[0-9]+", pattern=True) == [], "started uninvoked"
        expected = local_torch(models["v1"], torch.from_numpy(_batch())).numpy()
        for name, region in ((names[0], "eu"), (names[MANY // 2], "us"), (names[-1], "eu")):
            np.testing.assert_allclose(_infer(mesh, region, name), expected, rtol=1e-5, atol=1e-5)
        for region in ("eu", "us"):
            capacity = mesh.region(region).status.capacity
            assert capacity.memory_used_bytes <= capacity.memory_budget_bytes
        # Idle again: back to zero, every worker gone.
        wait_until(all_at_zero, 60, "the sampled deployments back at zero")
        for region in ("eu", "us"):
            wait_until(
                lambda r=region: mesh.worker_pids(r, "many-[0-9]+", pattern=True) == [],  # type: ignore[misc]
                30,
                f"every worker in {region} gone",
            )
    finally:
        _delete(mesh, *names)
