"""A real tritonserver started by `python -m workers.triton_worker`, serving the demo TorchScript
model through our Python backend; tritonclient (in a subprocess) talks to it over gRPC and HTTP.

One worker serves the whole module (each start costs seconds). Its signature takes any trailing
size ([-1, -1]) so a wrong-shaped request reaches the model and fails there, next to good ones.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.harness.processes import wait_until
from tests.harness.triton import TritonHandle, running_triton_worker
from tests.harness.triton_client import triton_burst, triton_infer
from workers.demo import build_mlp
from workers.triton_worker.metrics import TritonLoad, parse_load

MODEL = "mnist"
SIGNATURE = {
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, -1]}],
    "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}],
}
BATCHING = [
    "--max-batch-size", "8",
    "--max-batch-delay-ms", "20",
    "--preferred-batch-sizes", "4,8",
    "--priority-levels", "2",
]  # fmt: skip

Reference = Callable[[np.ndarray], np.ndarray]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mlp(tmp_path_factory.mktemp("model") / "mnist.pt", seed=3)


@pytest.fixture(scope="module")
def reference(model_path: Path) -> Reference:
    """What local torch computes for the same file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(model_path), map_location="cpu").eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out: np.ndarray = module(torch.from_numpy(x.copy())).numpy()
            return out

    return run


@pytest.fixture(scope="module")
def triton(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[TritonHandle]:
    with running_triton_worker(
        tmp_path_factory.mktemp("triton"),
        model_path,
        model_name=MODEL,
        model_version="3",
        signature=SIGNATURE,
        extra_args=BATCHING,
    ) as handle:
        yield handle


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 784), dtype=np.float32)


def load(triton: TritonHandle) -> TritonLoad:
    return parse_load(triton.metrics_text(), MODEL)


def test_tritonclient_gets_what_torchscript_computes(
    triton: TritonHandle, reference: Reference
) -> None:
    x = images(3, seed=11)
    results = triton_infer(
        triton.grpc_target,
        MODEL,
        x,
        cases=("grpc", "http-binary", "http-json"),
        http_endpoint=triton.http_endpoint,
    )
    for case, result in results.items():
        assert isinstance(result, np.ndarray), (case, result)
        assert result.shape == (3, 10)
        np.testing.assert_allclose(result, reference(x), atol=1e-5, err_msg=case)


def test_health_and_metadata(triton: TritonHandle) -> None:
    with grpc.insecure_channel(triton.grpc_target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with urllib.request.urlopen(f"{triton.worker.http_url}/v2/models/{MODEL}", timeout=5) as r:
        meta = json.load(r)
    assert meta["versions"] == ["3"]  # --model-version 3 is Triton's version folder
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, -1]}]
    assert meta["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}]
    with urllib.request.urlopen(f"{triton.worker.http_url}/v2", timeout=5) as r:
        assert json.load(r)["name"] == triton.worker.worker_id  # Triton's --id


def test_concurrent_requests_run_in_shared_forward_passes(
    triton: TritonHandle, reference: Reference
) -> None:
    x = images(16, seed=5)
    before = load(triton)
    burst = triton_burst(triton.grpc_target, triton.http_endpoint, MODEL, x)
    for i, reply in enumerate(burst.replies):
        assert isinstance(reply, np.ndarray), (i, reply)
        np.testing.assert_allclose(reply, reference(x[i : i + 1]), atol=1e-5)
    wait_until(lambda: load(triton).requests - before.requests >= 16, 10, "16 requests counted")
    after = load(triton)
    assert after.requests - before.requests == 16
    assert after.inferences - before.inferences == 16
    executions = after.executions - before.executions
    assert 2 <= executions < 16, f"16 requests took {executions} forward passes"


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_malformed_request_fails_alone(
    triton: TritonHandle, reference: Reference, protocol: str
) -> None:
    x = images(6, seed=7)
    bad = np.zeros((1, 783), dtype=np.float32)  # the model takes 784 features
    burst = triton_burst(triton.grpc_target, triton.http_endpoint, MODEL, x, protocol, bad)
    assert isinstance(burst.bad, str)
    assert "mat1 and mat2 shapes cannot be multiplied (1x783 and 784x128)" in burst.bad
    for i, reply in enumerate(burst.replies):
        assert isinstance(reply, np.ndarray), (i, reply)
        np.testing.assert_allclose(reply, reference(x[i : i + 1]), atol=1e-5)


def test_parse_load_reads_real_metrics(triton: TritonHandle) -> None:
    triton_infer(triton.grpc_target, MODEL, images(2, seed=1), cases=("grpc",))
    text = triton.metrics_text()
    assert f'nv_inference_exec_count{{model="{MODEL}",version="3"}}' in text
    seen = parse_load(text, MODEL)
    assert seen.queued == 0
    assert seen.requests >= 1 and seen.executions >= 1
    assert seen.inferences >= seen.executions
    assert parse_load(text, "no-such-model") == TritonLoad()


def test_unbatchable_signature_and_exec(
    tmp_path: Path, model_path: Path, reference: Reference
) -> None:
    """max_batch_size 0 with full dims, a non-integer version label, and the exec itself: the
    process the harness started *is* tritonserver and exits 0 on SIGTERM."""
    signature = {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 784]}],
        "outputs": [{"name": "output", "datatype": "FP32", "shape": [1, 10]}],
    }
    started = time.monotonic()
    with running_triton_worker(
        tmp_path, model_path, model_version="v2", signature=signature, extra_args=BATCHING[:2]
    ) as handle:
        ready_s = time.monotonic() - started
        process = handle.worker.process
        assert os.readlink(f"/proc/{process.pid}/exe").endswith("/tritonserver")
        x = images(1, seed=2)
        result = triton_infer(handle.grpc_target, MODEL, x, cases=("grpc",))["grpc"]
        assert isinstance(result, np.ndarray)
        np.testing.assert_allclose(result, reference(x), atol=1e-5)
        config = (handle.repository_dir / MODEL / "config.pbtxt").read_text()
        assert "max_batch_size: 0\n" in config and "dynamic_batching" not in config
        assert (handle.repository_dir / MODEL / "1" / "model.py").is_file()
    assert process.proc.returncode == 0, process.log()[-2000:]
    assert "the model is not batchable" in process.log()
    assert ready_s < 60
