"""Talk to an OIP server with the real tritonclient, in its own process; print JSON results.

tritonclient.grpc registers protos that clash with meshline.inference in one process, so tests
run this script as a subprocess:

    python tests/harness/triton_client_script.py --grpc 127.0.0.1:8001 --http 127.0.0.1:8000 \
        --model mnist --input x.npy --cases grpc,http-binary,http-json

stdout: {"<case>": {"ok": true, "outputs": {"output": {"datatype", "shape", "data"}}} |
         {"ok": false, "error": "...", "status": "..."}, ...}
Cases: grpc, grpc-meta, http-binary, http-json, http-default (no outputs named), http-gzip,
http-meta.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from tritonclient.utils import InferenceServerException, np_to_triton_dtype


def _outputs(result: Any, names: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in names:
        array = result.as_numpy(name)
        if array is not None:
            found[name] = {
                "datatype": np_to_triton_dtype(array.dtype),
                "shape": list(array.shape),
                "data": array.ravel().tolist(),
            }
    return found


def run_grpc(args: argparse.Namespace, data: np.ndarray, meta_only: bool) -> dict[str, Any]:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(args.grpc)
    headers = dict(args.header)
    if meta_only:
        return {
            "ok": True,
            "live": client.is_server_live(headers=headers),
            "ready": client.is_server_ready(headers=headers),
            "model_ready": client.is_model_ready(args.model, args.version, headers=headers),
            "metadata": client.get_model_metadata(
                args.model, args.version, headers=headers, as_json=True
            ),
            "server": client.get_server_metadata(headers=headers, as_json=True),
        }
    tensor = grpcclient.InferInput(
        args.input_name, list(data.shape), np_to_triton_dtype(data.dtype)
    )
    tensor.set_data_from_numpy(data)
    outputs = [grpcclient.InferRequestedOutput(n) for n in args.output_name]
    result = client.infer(
        args.model, [tensor], model_version=args.version, outputs=outputs, headers=headers
    )
    return {"ok": True, "outputs": _outputs(result, args.output_name)}


def run_http(args: argparse.Namespace, data: np.ndarray, mode: str) -> dict[str, Any]:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(args.http)
    headers = dict(args.header)
    if mode == "meta":
        return {
            "ok": True,
            "live": client.is_server_live(headers=headers),
            "ready": client.is_server_ready(headers=headers),
            "model_ready": client.is_model_ready(args.model, args.version, headers=headers),
            "metadata": client.get_model_metadata(args.model, args.version, headers=headers),
            "server": client.get_server_metadata(headers=headers),
        }
    binary = mode != "json"
    tensor = httpclient.InferInput(
        args.input_name, list(data.shape), np_to_triton_dtype(data.dtype)
    )
    tensor.set_data_from_numpy(data, binary_data=binary)
    outputs = (
        None
        if mode == "default"
        else [httpclient.InferRequestedOutput(n, binary_data=binary) for n in args.output_name]
    )
    compression = "gzip" if mode == "gzip" else None
    result = client.infer(
        args.model,
        [tensor],
        model_version=args.version,
        outputs=outputs,
        headers=headers,
        request_compression_algorithm=compression,
        response_compression_algorithm=compression,
    )
    answer = {"ok": True, "outputs": _outputs(result, args.output_name)}
    response = result.get_response()
    answer["binary"] = any(
        "binary_data_size" in (o.get("parameters") or {}) for o in response.get("outputs", [])
    )
    return answer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grpc", default="", help="host:port of the gRPC endpoint")
    parser.add_argument("--http", default="", help="host:port of the HTTP endpoint")
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", default="")
    parser.add_argument("--input", required=True, help=".npy file with the input tensor")
    parser.add_argument("--input-name", default="input")
    parser.add_argument("--output-name", action="append", default=[])
    parser.add_argument(
        "--header", action="append", default=[], type=lambda s: tuple(s.split("=", 1))
    )
    parser.add_argument("--cases", default="grpc,http-binary,http-json")
    args = parser.parse_args()
    args.output_name = args.output_name or ["output"]
    data = np.load(args.input)

    cases: dict[str, Callable[[], dict[str, Any]]] = {
        "grpc": lambda: run_grpc(args, data, meta_only=False),
        "grpc-meta": lambda: run_grpc(args, data, meta_only=True),
        "http-binary": lambda: run_http(args, data, "binary"),
        "http-json": lambda: run_http(args, data, "json"),
        "http-default": lambda: run_http(args, data, "default"),
        "http-gzip": lambda: run_http(args, data, "gzip"),
        "http-meta": lambda: run_http(args, data, "meta"),
    }
    results: dict[str, Any] = {}
    for case in args.cases.split(","):
        try:
            results[case] = cases[case]()
        except InferenceServerException as exc:
            results[case] = {"ok": False, "error": exc.message(), "status": str(exc.status())}
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
