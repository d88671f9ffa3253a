"""tritonclient's model repository calls against a shared worker, in their own process.

tritonclient.grpc registers protos that clash with meshline.inference in one process, so
test_shared_tritonclient.py runs this as a subprocess:

    python repository_client_script.py --grpc HOST:PORT --http HOST:PORT --config JSON \
        --bad-config JSON --input x.npy

For each protocol it loads model `tc-<protocol>` with the config, lists the index, checks it is
ready, runs one inference, unloads it, checks again, and tries to load `tc-bad` with the bad
config. stdout: {"grpc": {...}, "http": {...}}.
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


def run_grpc(args: argparse.Namespace, data: np.ndarray) -> dict[str, Any]:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(args.grpc)
    name = "tc-grpc"
    client.load_model(name, config=args.config)
    index = client.get_model_repository_index(as_json=True).get("models", [])
    ready = client.is_model_ready(name)
    tensor = grpcclient.InferInput("input", list(data.shape), "FP32")
    tensor.set_data_from_numpy(data)
    output = client.infer(name, [tensor]).as_numpy("output")
    client.unload_model(name)
    return {
        "index": index,
        "ready": ready,
        "output": output.tolist(),
        "ready_after_unload": client.is_model_ready(name),
        "index_after_unload": client.get_model_repository_index(as_json=True).get("models", []),
        "bad_load": _error(lambda: client.load_model("tc-bad", config=args.bad_config)),
    }


def run_http(args: argparse.Namespace, data: np.ndarray) -> dict[str, Any]:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(args.http)
    name = "tc-http"
    client.load_model(name, config=args.config)
    index = client.get_model_repository_index()
    ready = client.is_model_ready(name)
    tensor = httpclient.InferInput("input", list(data.shape), "FP32")
    tensor.set_data_from_numpy(data)
    output = client.infer(name, [tensor]).as_numpy("output")
    client.unload_model(name)
    return {
        "index": index,
        "ready": ready,
        "output": output.tolist(),
        "ready_after_unload": client.is_model_ready(name),
        "index_after_unload": client.get_model_repository_index(),
        "bad_load": _error(lambda: client.load_model("tc-bad", config=args.bad_config)),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grpc", required=True)
    parser.add_argument("--http", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--bad-config", required=True)
    parser.add_argument("--input", required=True)
    args = parser.parse_args()
    data = np.load(args.input)
    json.dump({"grpc": run_grpc(args, data), "http": run_http(args, data)}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
