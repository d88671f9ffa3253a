"""tritonclient's model repository calls against a shared worker, in their own process.

tritonclient.grpc registers protos that clash with meshline.inference in one process, so
test_shared_tritonclient.py runs this as a subprocess:

    python repository_client_script.py --grpc HOST:PORT --grpc-control HOST:PORT \
        --http HOST:PORT --http-control HOST:PORT --config JSON --bad-config JSON --input x.npy

For each protocol it loads model `tc-<protocol>` with the config through the control port, lists
the index, checks it is ready and runs one inference through the inference port, tries the
repository calls on the inference port (refused), unloads it, checks again, and tries to load
`tc-bad` with the bad config. stdout: {"grpc": {...}, "http": {...}}.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np
from tritonclient.utils import InferenceServerException


def _error(call: Any) -> dict[str, str]:
    try:
        call()
    except InferenceServerException as exc:
        return {"status": str(exc.status()), "message": str(exc.message())}
    return {"status": "", "message": "no error"}


def _refused(client: Any, name: str, config: str) -> dict[str, dict[str, str]]:
    """The repository calls, on a port that must refuse them."""
    return {
        "load": _error(lambda: client.load_model(name, config=config)),
        "unload": _error(lambda: client.unload_model(name)),
        "index": _error(lambda: client.get_model_repository_index()),
    }


def run_grpc(args: argparse.Namespace, data: np.ndarray) -> dict[str, Any]:
    import tritonclient.grpc as grpcclient

    control = grpcclient.InferenceServerClient(args.grpc_control)
    client = grpcclient.InferenceServerClient(args.grpc)
    name = "tc-grpc"
    control.load_model(name, config=args.config)
    index = control.get_model_repository_index(as_json=True).get("models", [])
    ready = client.is_model_ready(name)
    tensor = grpcclient.InferInput("input", list(data.shape), "FP32")
    tensor.set_data_from_numpy(data)
    output = client.infer(name, [tensor]).as_numpy("output")
    refused = _refused(client, name, args.config)
    ready_after_refused = client.is_model_ready(name)
    control.unload_model(name)
    return {
        "index": index,
        "ready": ready,
        "output": output.tolist(),
        "refused": refused,
        "ready_after_refused": ready_after_refused,
        "ready_after_unload": client.is_model_ready(name),
        "index_after_unload": control.get_model_repository_index(as_json=True).get("models", []),
        "bad_load": _error(lambda: control.load_model("tc-bad", config=args.bad_config)),
    }


def run_http(args: argparse.Namespace, data: np.ndarray) -> dict[str, Any]:
    import tritonclient.http as httpclient

    control = httpclient.InferenceServerClient(args.http_control)
    client = httpclient.InferenceServerClient(args.http)
    name = "tc-http"
    control.load_model(name, config=args.config)
    index = control.get_model_repository_index()
    ready = client.is_model_ready(name)
    tensor = httpclient.InferInput("input", list(data.shape), "FP32")
    tensor.set_data_from_numpy(data)
    output = client.infer(name, [tensor]).as_numpy("output")
    refused = _refused(client, name, args.config)
    ready_after_refused = client.is_model_ready(name)
    control.unload_model(name)
    return {
        "index": index,
        "ready": ready,
        "output": output.tolist(),
        "refused": refused,
        "ready_after_refused": ready_after_refused,
        "ready_after_unload": client.is_model_ready(name),
        "index_after_unload": control.get_model_repository_index(),
        "bad_load": _error(lambda: control.load_model("tc-bad", config=args.bad_config)),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grpc", required=True, help="the inference port")
    parser.add_argument("--grpc-control", required=True, help="the control port")
    parser.add_argument("--http", required=True, help="the inference port")
    parser.add_argument("--http-control", required=True, help="the control HTTP port")
    parser.add_argument("--config", required=True)
    parser.add_argument("--bad-config", required=True)
    parser.add_argument("--input", required=True)
    args = parser.parse_args()
    data = np.load(args.input)
    json.dump({"grpc": run_grpc(args, data), "http": run_http(args, data)}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
