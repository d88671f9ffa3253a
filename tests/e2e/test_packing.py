"""Packing, end to end: deployments with `resources.packing: shared` are models loaded into one
shared Torch worker process of their region, and still each a deployment of their own (routing
key, status, scale to zero); a model that crashes the process is named, restarted apart, and its
neighbours come back without it.

Real control plane, Envoy gateways, agents and shared worker processes (module mesh: regions eu
and us; these deployments are placed in eu only).
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch

from meshline.inference import grpc_service_pb2_grpc as oip_grpc
from meshline.v1 import resources_pb2
from tests.e2e.conftest import deployment_yaml, local_torch
from tests.harness.load import ClientLoop, infer_request, output_array
from tests.harness.mesh import Mesh
from tests.harness.processes import wait_until

PACKED = 50


def _batch(seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, 784)).astype(np.float32)


def _infer(mesh: Mesh, deployment: str, model_name: str = "", timeout: float = 60) -> np.ndarray:
    """Through eu's gateway, named by metadata; `model_name` (default: the deployment) is what
    the request body names."""
    with grpc.insecure_channel(mesh.gateway("eu")) as channel:
        response = oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            infer_request(model_name or deployment, _batch()),
            metadata=(("x-meshline-deployment", deployment),),
            timeout=timeout,
        )
    return output_array(response)


def _eu(mesh: Mesh, name: str) -> resources_pb2.RegionDeploymentStatus:
    return next(r for r in mesh.deployment(name).status.regions if r.region == "eu")


def _flags(pid: int) -> dict[str, str]:
    """A process's `--flag value` pairs, from its command line (NUL-separated, or one line when
    a standby interpreter took it as its title)."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    return dict(re.findall(r"--([a-z-]+)[\s\0]+([^\s\0-][^\s\0]*)", cmdline))


def _metrics(flags: dict[str, str]) -> str:
    """A shared worker's Prometheus page, read from the worker itself."""
    url = f"http://{flags['host']}:{flags['http-port']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        return str(reply.read().decode())


def _neighbours_gone(flags: dict[str, str], names: list[str]) -> bool:
    """None of `names` holds memory in the shared worker any more (unloaded)."""
    page = _metrics(flags)
    return not any(
        line.startswith("meshline_worker_model_memory_bytes{") and f'model="{n}"' in line
        for line in page.splitlines()
        for n in names
    )


def _model_requests(flags: dict[str, str], model: str) -> int:
    """Inference requests the shared worker ran for `model`, by its own per-model counter."""
    page = _metrics(flags)
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in page.splitlines()
        if line.startswith("meshline_worker_requests_total{") and f'model="{model}"' in line
    )


def test_packed_deployments_share_one_process_and_answer_as_their_own_models(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    names = [f"packed-{i}" for i in range(PACKED)]
    files = {name: models["v1" if i % 2 == 0 else "v2"] for i, name in enumerate(names)}
    try:
        documents = [
            deployment_yaml(n, {"v1": files[n]}, "v1", ["eu"], packing="shared") for n in names
        ]
        # One Environment document (each text starts with it), then every Model and Deployment.
        mesh.apply(
            "---\n".join([documents[0], *(d.split("---\n", 1)[1] for d in documents[1:])]),
            timeout_s=120,
        )
        for name in names:
            mesh.wait_ready(name, timeout_s=180)
        # One process serves all of them: no worker process of their own.
        [shared_pid] = mesh.shared_worker_pids("eu")
        assert not mesh.worker_pids("eu", "packed-[0-9]+", pattern=True)
        shared_ids = {tuple(_eu(mesh, n).shared_workers) for n in names}
        assert len(shared_ids) == 1 and len(next(iter(shared_ids))) == 1, shared_ids
        assert _flags(shared_pid)["worker-id"] == next(iter(shared_ids))[0]

        # Each answers as its own model would without meshline in between.
        expected = {p: local_torch(p, torch.from_numpy(_batch())).numpy() for p in models.values()}
        for name in names:
            np.testing.assert_allclose(_infer(mesh, name), expected[files[name]], rtol=1e-5)

        # A caller allowed one deployment cannot reach its neighbour's model in the same
        # process by naming it in the body: refused, and the neighbour never ran it.
        flags = _flags(shared_pid)
        before = _model_requests(flags, "packed-1")
        with pytest.raises(grpc.RpcError) as refused:
            _infer(mesh, "packed-0", model_name="packed-1")
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "packed-1" in (refused.value.details() or "")
        assert _model_requests(flags, "packed-1") == before

        # Capacity counts the process's own cost once, not once per model.
        capacity = mesh.region("eu").status.capacity
        assert capacity.workers >= 1
        assert capacity.memory_used_bytes < PACKED * 100 * 2**20

        # Its neighbours unloaded (drained first) under a client loop: no request is cut.
        with ClientLoop(mesh.gateway("eu"), names[0], _batch(), concurrency=2) as loop:
            wait_until(lambda: loop.ok > 10, 60, "the client loop's requests flowing")
            mesh.delete_deployments(names[1:])

            wait_until(lambda: _neighbours_gone(flags, names[1:]), 120, "neighbours unloaded")
            done = loop.ok
            wait_until(lambda: loop.ok > done + 10, 60, "requests still flowing")
        assert loop.failures == [], loop.failures[:5]
        assert mesh.shared_worker_pids("eu") == [shared_pid]  # the same process serves on
    finally:
        mesh.delete_deployments(names)
    # The last model left: its shared worker stops.
    wait_until(lambda: not mesh.shared_worker_pids("eu"), 60, "the emptied shared worker to stop")


SLOW_LOAD_LOOPS = 400_000


class _SlowFirstPasses(torch.nn.Module):
    """A model whose warm-up passes take seconds: its load is long enough to be crashed in."""

    def __init__(self) -> None:
        super().__init__()
        self.loops = SLOW_LOAD_LOOPS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x[:, :10]
        for _ in range(self.loops):
            y = y * 1.0
        return y


def test_a_model_that_crashes_its_shared_worker_is_named_and_runs_apart(
    mesh: Mesh, models: dict[str, Path], tmp_path: Path
) -> None:
    slow = tmp_path / "slow.pt"
    torch.jit.script(_SlowFirstPasses()).save(str(slow))
    try:
        mesh.apply(deployment_yaml("steady", {"v1": models["v1"]}, "v1", ["eu"], packing="shared"))
        mesh.wait_ready("steady")
        [pid] = mesh.shared_worker_pids("eu")
        activity = Path(_flags(pid)["activity-file"])
        mesh.apply(deployment_yaml("crashy", {"v1": slow}, "v1", ["eu"], packing="shared"))

        def loading_crashy() -> bool:
            try:
                risky = json.loads(activity.read_text())["risky"]
            except (OSError, ValueError):
                return False
            return any(r["model"] == "crashy" for r in risky)

        wait_until(loading_crashy, 60, "crashy loading into steady's shared worker")
        # What a model that segfaults does to its process (this test's stand-in for one).
        os.kill(pid, signal.SIGSEGV)

        # steady is back, restarted at once in a new shared worker, told which model it was.
        def steady_back() -> bool:
            eu = _eu(mesh, "steady")
            return mesh.deployment("steady").status.phase == "Ready" and bool(
                eu.last_restart_reason
            )

        wait_until(steady_back, 120, "steady serving again after the crash")
        steady = _eu(mesh, "steady")
        assert "taken down by model 'crashy'" in steady.last_restart_reason
        _infer(mesh, "steady")

        # crashy is charged and named, and runs in a shared worker of its own.
        mesh.wait_ready("crashy", timeout_s=180)
        crashy = _eu(mesh, "crashy")
        assert "crashed its shared worker" in crashy.last_restart_reason
        assert crashy.shared_workers and steady.shared_workers
        assert set(crashy.shared_workers).isdisjoint(steady.shared_workers)
        assert len(mesh.shared_worker_pids("eu")) == 2
        assert pid not in mesh.shared_worker_pids("eu")
    finally:
        mesh.delete_deployments(["steady", "crashy"])
    wait_until(lambda: not mesh.shared_worker_pids("eu"), 60, "the shared workers to stop")


def test_a_serverless_packed_deployment_loads_on_its_first_call_and_unloads_when_idle(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    scaling = "{min_replicas: 0, max_replicas: 1, scale_to_zero_after: 2, stable_window: 2}"
    try:
        mesh.apply(
            deployment_yaml(
                "sleepy", {"v1": models["v1"]}, "v1", ["eu"], scaling=scaling, packing="shared"
            )
        )
        mesh.wait_ready("sleepy")
        assert not mesh.shared_worker_pids("eu"), "nothing runs until invoked"
        # Concurrent first calls: all held while the model loads, all answered.
        results: list[np.ndarray] = []
        calls = [
            threading.Thread(target=lambda: results.append(_infer(mesh, "sleepy")))
            for _ in range(3)
        ]
        for call in calls:
            call.start()
        for call in calls:
            call.join(90)
        expected = local_torch(models["v1"], torch.from_numpy(_batch())).numpy()
        assert len(results) == 3
        for result in results:
            np.testing.assert_allclose(result, expected, rtol=1e-5)
        assert _eu(mesh, "sleepy").cold_starts >= 1
        assert len(mesh.shared_worker_pids("eu")) == 1
        # Idle: back to zero, the model unloaded, and the emptied process gone.
        wait_until(lambda: _eu(mesh, "sleepy").scaled_to_zero, 90, "sleepy back to zero")
        wait_until(lambda: not mesh.shared_worker_pids("eu"), 60, "the shared worker to stop")
    finally:
        mesh.delete_deployments(["sleepy"])
