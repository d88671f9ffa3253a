"""The walking mesh end to end: real control plane, Envoy gateways and Torch workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch

from meshline.inference import grpc_service_pb2_grpc as oip_grpc
from meshline.v1 import api_pb2
from tests.e2e.conftest import deployment_yaml, local_torch
from tests.harness.load import ClientLoop, infer_request, output_array
from tests.harness.mesh import Mesh
from tests.harness.processes import wait_until
from tests.harness.triton_client import triton_infer

REGIONS = ["eu", "us"]


def _batch(rows: int = 3, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, 784)).astype(np.float32)


def _grpc_infer(
    gateway: str, deployment: str, batch: np.ndarray, environment: str = "production"
) -> np.ndarray:
    with grpc.insecure_channel(gateway) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        response = stub.ModelInfer(
            infer_request(deployment, batch),
            metadata=(
                ("x-meshline-deployment", deployment),
                ("x-meshline-environment", environment),
            ),
            timeout=10,
        )
    return output_array(response)


def _delete(mesh: Mesh, name: str) -> None:
    mesh.deployments.DeleteDeployment(api_pb2.DeleteDeploymentRequest(name=name), timeout=10)


def test_inference_through_every_gateway_matches_local_torch(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    mesh.apply(deployment_yaml("mlp-a", models, "v1", REGIONS))
    try:
        mesh.wait_ready("mlp-a")
        batch = _batch()
        expected = local_torch(models["v1"], torch.from_numpy(batch)).numpy()
        for region in REGIONS:
            gateway = mesh.gateway(region)
            np.testing.assert_array_equal(_grpc_infer(gateway, "mlp-a", batch), expected)
            results = triton_infer(
                gateway, "mlp-a", batch, headers={"x-meshline-deployment": "mlp-a"}
            )
            assert set(results) == {"grpc", "http-binary", "http-json"}
            for case, output in results.items():
                assert not isinstance(output, str), (region, case, output)
                np.testing.assert_allclose(output, expected, rtol=1e-6, atol=1e-6)
        status = mesh.deployment("mlp-a").status
        assert sorted(r.region for r in status.regions) == REGIONS
        assert all(r.config_acked and r.healthy_endpoints >= 1 for r in status.regions)
    finally:
        _delete(mesh, "mlp-a")


def test_new_version_switches_without_a_failed_request(mesh: Mesh, models: dict[str, Path]) -> None:
    mesh.apply(deployment_yaml("mlp-b", models, "v1", REGIONS, replicas=1))
    try:
        mesh.wait_ready("mlp-b")
        batch = _batch(seed=3)
        v1 = local_torch(models["v1"], torch.from_numpy(batch)).numpy()
        v2 = local_torch(models["v2"], torch.from_numpy(batch)).numpy()
        assert not np.allclose(v1, v2)
        with ClientLoop(mesh.gateway("eu"), "mlp-b", batch) as loop:
            wait_until(lambda: loop.count() > 5, 30, "the client loop to get answers")
            np.testing.assert_array_equal(loop.last_output, v1)
            mesh.apply(deployment_yaml("mlp-b", models, "v2", REGIONS, replicas=1))

            def switched() -> bool:
                out = loop.last_output
                return out is not None and np.array_equal(out, v2)

            wait_until(switched, 90, "answers from version v2")
            before = loop.count()
            wait_until(lambda: loop.count() > before + 20, 30, "more answers after the switch")
        assert loop.failures == []
        # Each region rolls on its own; the other one gets there too.
        us = mesh.gateway("us")
        wait_until(
            lambda: np.array_equal(_grpc_infer(us, "mlp-b", batch), v2),
            90,
            "version v2 in region us",
        )
    finally:
        _delete(mesh, "mlp-b")


def test_deleted_deployment_answers_not_found(mesh: Mesh, models: dict[str, Path]) -> None:
    mesh.apply(deployment_yaml("mlp-c", models, "v1", ["eu"]))
    mesh.wait_ready("mlp-c")
    gateway = mesh.gateway("eu")
    _grpc_infer(gateway, "mlp-c", _batch())
    _delete(mesh, "mlp-c")

    def grpc_not_found() -> bool:
        try:
            _grpc_infer(gateway, "mlp-c", _batch())
        except grpc.RpcError as exc:
            return exc.code() == grpc.StatusCode.NOT_FOUND and "mlp-c" in (exc.details() or "")  # type: ignore[attr-defined]
        return False

    wait_until(grpc_not_found, 30, "gRPC NOT_FOUND for the deleted deployment")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(
            urllib.request.Request(
                f"http://{gateway}/v2/models/mlp-c/infer",
                method="POST",
                data=b"{}",
                headers={"content-type": "application/json"},
            ),
            timeout=10,
        )
    assert info.value.code == 404
    assert "mlp-c" in info.value.read().decode()


def test_bad_tensors_get_clear_errors_through_the_gateway(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    mesh.apply(deployment_yaml("mlp-d", models, "v1", ["us"]))
    try:
        mesh.wait_ready("mlp-d")
        gateway = mesh.gateway("us")
        with pytest.raises(grpc.RpcError) as info:
            _grpc_infer(gateway, "mlp-d", np.zeros((2, 100), dtype=np.float32))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert "input" in info.value.details()  # type: ignore[attr-defined]
        body = json.dumps(
            {
                "inputs": [
                    {"name": "input", "datatype": "INT32", "shape": [1, 784], "data": [0] * 784}
                ]
            }
        ).encode()
        with pytest.raises(urllib.error.HTTPError) as http_info:
            urllib.request.urlopen(
                urllib.request.Request(
                    f"http://{gateway}/v2/models/mlp-d/infer",
                    method="POST",
                    data=body,
                    headers={"content-type": "application/json"},
                ),
                timeout=10,
            )
        assert http_info.value.code == 400
        assert "input" in http_info.value.read().decode()
        # The worker is still fine after bad requests.
        _grpc_infer(gateway, "mlp-d", _batch())
    finally:
        _delete(mesh, "mlp-d")


def _worker_pids(mesh: Mesh, region: str) -> list[int]:
    out = subprocess.run(
        # Workers, not the agent's waiting standby interpreter (workers.torch_worker.standby).
        ["pgrep", "-P", str(mesh.agents[region].pid), "-f", r"workers\.torch_worker --"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [int(p) for p in out.split()]


@pytest.mark.parametrize(
    "stop_signal", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"]
)
def test_killed_worker_is_restarted_and_clients_see_no_failure(
    mesh: Mesh, models: dict[str, Path], stop_signal: signal.Signals
) -> None:
    """SIGKILL: the gateway sees resets. SIGTERM from outside (not the agent's drain): the
    worker's gRPC server answers CANCELLED for calls it had queued but not started, which the
    gateway must replay; 8 clients keep enough of them queued for that to happen."""
    mesh.apply(deployment_yaml("mlp-e", models, "v1", ["eu"], replicas=2))
    try:
        mesh.wait_ready("mlp-e", replicas=2)
        batch = _batch(seed=11)
        pids = _worker_pids(mesh, "eu")
        assert len(pids) == 2
        with ClientLoop(mesh.gateway("eu"), "mlp-e", batch, concurrency=8) as loop:
            wait_until(lambda: loop.count() > 20, 30, "the client loop to get answers")
            os.kill(pids[0], stop_signal)

            def restarted() -> bool:
                now = _worker_pids(mesh, "eu")
                return len(now) == 2 and pids[0] not in now

            wait_until(restarted, 60, "the agent to restart the killed worker")
            mesh.wait_ready("mlp-e", replicas=2, timeout_s=60)
            before = loop.count()
            wait_until(lambda: loop.count() > before + 20, 30, "answers after the restart")
        assert loop.failures == []
        assert loop.count() > 40
    finally:
        _delete(mesh, "mlp-e")


def test_controlplane_restart_under_load_loses_nothing(mesh: Mesh, models: dict[str, Path]) -> None:
    mesh.apply(deployment_yaml("mlp-f", models, "v1", REGIONS))
    try:
        mesh.wait_ready("mlp-f")
        batch = _batch(seed=5)
        expected = local_torch(models["v1"], torch.from_numpy(batch)).numpy()
        with ClientLoop(mesh.gateway("us"), "mlp-f", batch) as loop:
            wait_until(lambda: loop.count() > 10, 30, "the client loop to get answers")
            mesh.restart_controlplane()
            mesh.wait_agents()
            mesh.wait_ready("mlp-f")
            before = loop.count()
            wait_until(lambda: loop.count() > before + 20, 30, "answers after the restart")
        assert loop.failures == []
        np.testing.assert_array_equal(loop.last_output, expected)
        assert mesh.deployment("mlp-f").spec.version == "v1"
    finally:
        _delete(mesh, "mlp-f")


def test_missing_model_file_is_rejected_and_nothing_is_lost(
    mesh: Mesh, models: dict[str, Path], tmp_path: Path
) -> None:
    mesh.apply(deployment_yaml("mlp-g", models, "v1", ["eu"]))
    try:
        broken = {"v1": models["v1"], "v2": tmp_path / "does-not-exist.pt"}
        with pytest.raises(grpc.RpcError) as info:
            mesh.apply(deployment_yaml("mlp-g", broken, "v2", ["eu"]))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert "does-not-exist.pt" in info.value.details()  # type: ignore[attr-defined]
        assert mesh.deployment("mlp-g").spec.version == "v1"
        mesh.wait_ready("mlp-g")
    finally:
        _delete(mesh, "mlp-g")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in state


def test_stopping_an_agent_stops_everything_it_started(mesh: Mesh, models: dict[str, Path]) -> None:
    agent = mesh.start_agent("ap")
    wait_until(lambda: mesh.region("ap").status.agent_connected, 60, "agent ap to connect")
    mesh.apply(deployment_yaml("mlp-h", models, "v1", ["ap"]))
    try:
        mesh.wait_ready("mlp-h")
        out = subprocess.run(
            ["pgrep", "-P", str(agent.pid)], capture_output=True, text=True, check=False
        ).stdout
        children = [int(p) for p in out.split()]
        commands = [Path(f"/proc/{p}/cmdline").read_bytes() for p in children]
        assert any(b"envoy" in c for c in commands) and any(b"torch_worker" in c for c in commands)
        os.kill(agent.pid, signal.SIGTERM)  # only the agent: it must stop its own children
        agent.proc.wait(timeout=30)
        assert agent.proc.returncode == 0
        assert [p for p in children if _alive(p)] == []
        wait_until(
            lambda: not mesh.region("ap").status.agent_connected,
            30,
            "the control plane to see agent ap gone",
        )
    finally:
        _delete(mesh, "mlp-h")


def test_a_crash_looping_version_is_failed_with_the_reason(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    """A signature that does not fit the model: workers exit at start; status says why."""
    text = deployment_yaml("mlp-i", models, "v1", ["eu"]).replace(
        "shape: [-1, 784]", "shape: [-1, 100]"
    )
    mesh.apply(text)
    try:

        def failed() -> bool:
            return mesh.deployment("mlp-i").status.phase == "Failed"

        wait_until(failed, 90, "the deployment to be Failed")
        message = mesh.deployment("mlp-i").status.message
        assert "keeps crashing" in message and "does not fit its signature" in message
    finally:
        _delete(mesh, "mlp-i")
