"""Talk to an OIP server with the real tritonclient, in its own process; print JSON results.

tritonclient.grpc registers protos that clash with meshline.inference in one process, so tests
run this script as a subprocess:

    python tests/harness/triton_client_script.py --grpc 127.0.0.1:8001 --http 127.0.0.1:8000 \
        --model mnist --input x.npy --cases grpc,http-binary,http-json

stdout: {"<case>": {"ok": true, "outputs": {"output": {"datatype", "shape", "data"}}} |
         {"ok": false, "error": "...", "status": "..."}, ...}
Cases: grpc, grpc-meta, http-binary, http-json, http-default (no outputs named), http-gzip,
http-meta, and grpc-burst / http-burst: one concurrent request per row of the input (shape
[1, ...] each), plus --bad-input sent among them when given; they answer
{"ok": true, "replies": [<reply per row>], "bad": <reply> | null}.
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

    if args.ca_file:  # the gateway serves TLS (edge TLS): tritonclient takes the CA's path
        client = grpcclient.InferenceServerClient(
            args.grpc, ssl=True, root_certificates=args.ca_file
        )
    else:
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

    if args.ca_file:  # https, trusting the CA file
        client = httpclient.InferenceServerClient(
            args.http, ssl=True, ssl_options={"ca_certs": args.ca_file}
        )
    else:
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


def _reply(result: Any, error: Exception | None, names: list[str]) -> dict[str, Any]:
    if error is not None:
        if isinstance(error, InferenceServerException):
            return {"ok": False, "error": error.message(), "status": str(error.status())}
        return {"ok": False, "error": str(error), "status": type(error).__name__}
    return {"ok": True, "outputs": _outputs(result, names)}


def _burst_inputs(args: argparse.Namespace, data: np.ndarray) -> list[np.ndarray]:
    """One [1, ...] request per row, with the bad input (if any) inserted in the middle."""
    rows = [data[i : i + 1] for i in range(data.shape[0])]
    if args.bad_input:
        rows.insert(len(rows) // 2, np.load(args.bad_input))
    return rows


def _burst_answer(args: argparse.Namespace, replies: list[dict[str, Any]]) -> dict[str, Any]:
    bad = None
    if args.bad_input:
        bad = replies.pop((len(replies) - 1) // 2)
    return {"ok": True, "replies": replies, "bad": bad}


def run_grpc_burst(args: argparse.Namespace, data: np.ndarray) -> dict[str, Any]:
    """All requests in flight at once (async_infer), answers collected in request order."""
    import threading

    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(args.grpc)
    rows = _burst_inputs(args, data)
    replies: list[dict[str, Any]] = [{} for _ in rows]
    done = threading.Semaphore(0)

    def callback(i: int, result: Any, error: Exception | None) -> None:
        replies[i] = _reply(result, error, args.output_name)
        done.release()

    for i, row in enumerate(rows):
        tensor = grpcclient.InferInput(
            args.input_name, list(row.shape), np_to_triton_dtype(row.dtype)
        )
        tensor.set_data_from_numpy(row)
        client.async_infer(
            args.model,
            [tensor],
            callback=lambda result, error, i=i: callback(i, result, error),
            model_version=args.version,
            outputs=[grpcclient.InferRequestedOutput(n) for n in args.output_name],
            headers=dict(args.header),
        )
    for _ in rows:
        if not done.acquire(timeout=60):
            raise TimeoutError("a burst request got no answer in 60 s")
    client.close()
    return _burst_answer(args, replies)


def run_http_burst(args: argparse.Namespace, data: np.ndarray) -> dict[str, Any]:
    import tritonclient.http as httpclient

    rows = _burst_inputs(args, data)
    client = httpclient.InferenceServerClient(args.http, concurrency=len(rows))
    pending = []
    for row in rows:
        tensor = httpclient.InferInput(
            args.input_name, list(row.shape), np_to_triton_dtype(row.dtype)
        )
        tensor.set_data_from_numpy(row)
        pending.append(
            client.async_infer(
                args.model,
                [tensor],
                model_version=args.version,
                outputs=[httpclient.InferRequestedOutput(n) for n in args.output_name],
                headers=dict(args.header),
            )
        )
    replies = []
    for request in pending:
        try:
            replies.append(_reply(request.get_result(timeout=60), None, args.output_name))
        except InferenceServerException as exc:
            replies.append(_reply(None, exc, args.output_name))
    client.close()
    return _burst_answer(args, replies)


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
    parser.add_argument("--bad-input", default="", help="burst cases: a .npy sent among the rows")
    parser.add_argument(
        "--ca-file", default="", help="TLS to the endpoints (grpc, http cases), trusting this CA"
    )
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
        "grpc-burst": lambda: run_grpc_burst(args, data),
        "http-burst": lambda: run_http_burst(args, data),
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
