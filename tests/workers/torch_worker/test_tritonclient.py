"""tritonclient (gRPC and HTTP) against the worker directly, from a subprocess.

tritonclient.grpc cannot be imported next to meshline.inference, so the client runs in
tests/harness/triton_client_script.py and prints JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tests.harness.processes import REPO_ROOT
from tests.harness.worker import WorkerHandle
from tests.workers.torch_worker.helpers import assert_matches_torch, images

SCRIPT = REPO_ROOT / "tests" / "harness" / "triton_client_script.py"
INFER_CASES = ("grpc", "http-binary", "http-json", "http-default", "http-gzip")


def run_client(worker: WorkerHandle, x: np.ndarray, tmp_path: Path, cases: str) -> dict[str, Any]:
    path = tmp_path / "input.npy"
    np.save(path, x)
    completed = subprocess.run(
        [
            sys.executable, str(SCRIPT),
            "--grpc", worker.grpc_target,
            "--http", f"{worker.host}:{worker.http_port}",
            "--model", worker.model_name,
            "--input", str(path),
            "--cases", cases,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    return dict(json.loads(completed.stdout))


def as_array(result: dict[str, Any]) -> np.ndarray:
    out = result["outputs"]["output"]
    assert out["datatype"] == "FP32"
    return np.array(out["data"], dtype=np.float32).reshape(out["shape"])


def test_tritonclient_same_numbers_over_grpc_and_http(
    worker: WorkerHandle, reference: Callable[[np.ndarray], np.ndarray], tmp_path: Path
) -> None:
    x = images(3, seed=11)
    results = run_client(worker, x, tmp_path, ",".join((*INFER_CASES, "grpc-meta", "http-meta")))
    for case in INFER_CASES:
        assert results[case]["ok"], (case, results[case])
    first = as_array(results["grpc"])
    assert first.shape == (3, 10)
    assert_matches_torch(first, reference(x))
    for case in INFER_CASES[1:]:
        np.testing.assert_array_equal(as_array(results[case]), first, err_msg=case)
    assert results["http-binary"]["binary"] and results["http-default"]["binary"]
    assert not results["http-json"]["binary"]

    for case in ("grpc-meta", "http-meta"):
        meta = results[case]
        assert meta["live"] and meta["ready"] and meta["model_ready"], (case, meta)
        assert meta["metadata"]["name"] == "mnist"
        assert meta["metadata"]["inputs"][0]["name"] == "input"
        assert meta["server"]["name"] == "meshline-torch-worker"


def test_tritonclient_sees_errors_naming_the_tensor(worker: WorkerHandle, tmp_path: Path) -> None:
    x = np.zeros((2, 783), dtype=np.float32)
    results = run_client(worker, x, tmp_path, "grpc,http-binary,http-json")
    for case, result in results.items():
        assert not result["ok"], case
        assert "input 'input': expected shape [-1, 784], got [2, 783]" in result["error"], result
    assert "INVALID_ARGUMENT" in results["grpc"]["status"]
    assert results["http-binary"]["status"] == "400"
