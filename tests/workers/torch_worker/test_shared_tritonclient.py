"""tritonclient's model repository API (load_model, unload_model, get_model_repository_index)
against a shared worker's control ports, and refused on its inference ports, over gRPC and HTTP,
from a subprocess (see the script's docstring)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from tests.workers.torch_worker.helpers import assert_matches_torch, images
from tests.workers.torch_worker.shared_helpers import config_of, running_shared_worker
from workers.demo import build_mlp

SCRIPT = Path(__file__).with_name("repository_client_script.py")


def test_tritonclient_loads_lists_and_unloads_models(tmp_path: Path) -> None:
    path = build_mlp(tmp_path / "tc.pt", seed=77)
    x = images(2, seed=3)
    np.save(tmp_path / "x.npy", x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu").eval()
    with torch.inference_mode():
        want = module(torch.from_numpy(x).clone()).numpy()
    missing = tmp_path / "missing.pt"
    with running_shared_worker(tmp_path / "logs") as worker:
        completed = subprocess.run(
            [
                sys.executable, str(SCRIPT),
                "--grpc", worker.grpc_target,
                "--grpc-control", worker.control_target,
                "--http", f"{worker.host}:{worker.http_port}",
                "--http-control", f"{worker.host}:{worker.control_http_port}",
                "--config", config_of(path, version="3"),
                "--bad-config", config_of(missing),
                "--input", str(tmp_path / "x.npy"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout)
    bad_reason = f"model 'tc-bad' failed to load: model file not found: {missing}"
    control_only = "the model repository is served on the worker's control port only"

    grpc_result = results["grpc"]
    assert grpc_result["index"] == [{"name": "tc-grpc", "version": "3", "state": "READY"}]
    assert grpc_result["ready"] and not grpc_result["ready_after_unload"]
    assert_matches_torch(np.array(grpc_result["output"], np.float32), want)
    for call in ("load", "unload", "index"):
        assert grpc_result["refused"][call] == {
            "status": "StatusCode.PERMISSION_DENIED",
            "message": control_only,
        }, call
    assert grpc_result["ready_after_refused"]  # the refused unload left it loaded
    assert grpc_result["index_after_unload"] == [
        {"name": "tc-grpc", "version": "3", "state": "UNAVAILABLE", "reason": "unloaded on request"}
    ]
    assert grpc_result["bad_load"]["status"] == "StatusCode.FAILED_PRECONDITION"
    assert bad_reason in grpc_result["bad_load"]["message"]

    http_result = results["http"]
    by_name = {m["name"]: m for m in http_result["index"]}
    assert by_name["tc-http"] == {"name": "tc-http", "version": "3", "state": "READY", "reason": ""}
    assert http_result["ready"] and not http_result["ready_after_unload"]
    assert_matches_torch(np.array(http_result["output"], np.float32), want)
    for call in ("load", "unload", "index"):  # no such routes on the inference HTTP port
        assert http_result["refused"][call]["status"] == "404", call
    assert http_result["ready_after_refused"]
    after = {m["name"]: m for m in http_result["index_after_unload"]}
    assert after["tc-http"]["state"] == "UNAVAILABLE"
    assert after["tc-bad"]["reason"].startswith(bad_reason)  # from the gRPC try
    assert http_result["bad_load"]["status"] == "400"
    assert bad_reason in http_result["bad_load"]["message"]
