"""A closed-loop load generator: N requests in flight for a fixed time, over gRPC or REST.

Runs in its own process (`python -m bench.load ...`) so the client's CPU use is the same
whichever target it measures. Protocols:

- `grpc`: ModelInfer with raw_input_contents (grpc.aio, one channel), as tritonclient sends it;
- `rest-json`: POST /v2/models/{model}/infer with JSON `data`, JSON reply;
- `rest-binary`: the binary tensor extension both ways (JSON header + raw bytes).

The REST client is a minimal HTTP/1.1 keep-alive client on asyncio streams (one connection per
in-flight request, as Envoy and tritonclient.http pool them), so it needs neither tritonclient
nor aiohttp and costs the shared cores as little as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
import numpy as np

from meshline import wire
from meshline.inference import grpc_service_pb2 as oip
from meshline.inference import grpc_service_pb2_grpc as oip_grpc

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = ("grpc", "rest-json", "rest-binary")
HEADER_LENGTH = "Inference-Header-Content-Length"
TIMEOUT_S = 10.0
# Extra request headers (a JSON object), read from the environment rather than the command line
# so that a credential a benchmark sends never shows in `ps`.
HEADERS_ENV = "MESHLINE_LOAD_HEADERS"


@dataclass(frozen=True)
class LoadResult:
    target: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    protocol: str = "grpc"

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class Workload:
    """What every request carries: one FP32 tensor of `rows` x `features`."""

    deployment: str
    model: str = ""
    input_name: str = "input"
    rows: int = 1
    features: int = 784
    # Sent with every request (gRPC metadata, HTTP headers): credentials, the environment.
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def model_name(self) -> str:
        return self.model or self.deployment

    def array(self) -> np.ndarray:
        rng = np.random.default_rng(0)
        return rng.standard_normal((self.rows, self.features)).astype(np.float32)


# ---- one call per protocol -----------------------------------------------------------------

Call = Callable[[], Awaitable[bool]]  # True when the request succeeded


def grpc_request(work: Workload) -> oip.ModelInferRequest:
    x = work.array()
    request = oip.ModelInferRequest(model_name=work.model_name)
    tensor = request.inputs.add(name=work.input_name, datatype="FP32")
    tensor.shape.extend(x.shape)
    request.raw_input_contents.append(x.tobytes())
    return request


def rest_body(work: Workload, binary: bool) -> tuple[bytes, dict[str, str]]:
    """The infer POST body and its extra headers (JSON `data`, or the binary extension)."""
    x = work.array()
    tensor: dict[str, object] = {
        "name": work.input_name,
        "datatype": "FP32",
        "shape": list(x.shape),
    }
    if not binary:
        tensor["data"] = x.ravel().tolist()
        return json.dumps({"inputs": [tensor]}).encode(), {"Content-Type": "application/json"}
    tensor["parameters"] = {"binary_data_size": x.nbytes}
    header = json.dumps(
        {"inputs": [tensor], "parameters": {"binary_data_output": True}}, separators=(",", ":")
    ).encode()
    return header + x.tobytes(), {
        "Content-Type": "application/octet-stream",
        HEADER_LENGTH: str(len(header)),
    }


class HttpConnection:
    """One keep-alive HTTP/1.1 connection that sends the same request again and again."""

    def __init__(self, host: str, port: int, request: bytes) -> None:
        self._host, self._port, self._request = host, port, request
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def call(self) -> bool:
        try:
            return await asyncio.wait_for(self._exchange(), TIMEOUT_S)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            self.close()
            return False

    async def _exchange(self) -> bool:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        self._writer.write(self._request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked, keep_alive = _framing(head)
        if chunked:
            await _read_chunked(self._reader)
        else:
            await self._reader.readexactly(length)
        if not keep_alive:
            self.close()
        return status == 200

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def _framing(head: bytes) -> tuple[int, bool, bool]:
    """Content-Length, chunked?, keep-alive? of a response head."""
    length, chunked, keep_alive = 0, False, True
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        key = key.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif key == b"connection" and b"close" in value.lower():
            keep_alive = False
    return length, chunked, keep_alive


async def _read_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        await reader.readexactly(size + 2)
        if size == 0:
            return


def http_request_bytes(host: str, work: Workload, binary: bool) -> bytes:
    body, headers = rest_body(work, binary)
    lines = [
        f"POST /v2/models/{work.model_name}/infer HTTP/1.1",
        f"Host: {host}",
        f"Content-Length: {len(body)}",
        f"{wire.DEPLOYMENT_HEADER}: {work.deployment}",
        *(f"{k}: {v}" for k, v in headers.items()),
        *(f"{k}: {v}" for k, v in work.headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# ---- the closed loop -----------------------------------------------------------------------


async def closed_loop(
    calls: list[Call], seconds: float, warmup_s: float
) -> tuple[list[float], int]:
    """Each call in its own loop until time is up; latencies (s) after warm-up, and errors."""
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + seconds

    async def loop(call: Call) -> None:
        nonlocal errors
        while (now := time.perf_counter()) < stop_at:
            ok = await call()
            if not ok:
                errors += 1
            elif now >= measure_from:
                latencies.append(time.perf_counter() - now)

    await asyncio.gather(*(loop(c) for c in calls))
    return latencies, errors


async def run_load(
    target: str,
    deployment: str,
    concurrency: int,
    seconds: float,
    warmup_s: float,
    protocol: str = "grpc",
    work: Workload | None = None,
) -> LoadResult:
    work = work or Workload(deployment)
    if protocol == "grpc":
        latencies, errors = await _grpc_load(target, work, concurrency, seconds, warmup_s)
    elif protocol in ("rest-json", "rest-binary"):
        host, _, port = target.rpartition(":")
        request = http_request_bytes(target, work, binary=protocol == "rest-binary")
        connections = [HttpConnection(host, int(port), request) for _ in range(concurrency)]
        latencies, errors = await closed_loop([c.call for c in connections], seconds, warmup_s)
        for c in connections:
            c.close()
    else:
        raise ValueError(f"unknown protocol {protocol!r} (one of {', '.join(PROTOCOLS)})")
    ms = np.asarray(latencies) * 1000
    return LoadResult(
        target,
        concurrency,
        len(latencies),
        errors,
        seconds,
        float(np.percentile(ms, 50)) if len(ms) else 0.0,
        float(np.percentile(ms, 99)) if len(ms) else 0.0,
        protocol,
    )


async def _grpc_load(
    target: str, work: Workload, concurrency: int, seconds: float, warmup_s: float
) -> tuple[list[float], int]:
    request = grpc_request(work)
    metadata = ((wire.DEPLOYMENT_HEADER, work.deployment), *work.headers)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)

        async def call() -> bool:
            try:
                await stub.ModelInfer(request, metadata=metadata, timeout=TIMEOUT_S)
            except grpc.aio.AioRpcError:
                return False
            return True

        return await closed_loop([call] * concurrency, seconds, warmup_s)


def load_subprocess(
    target: str,
    *,
    deployment: str,
    concurrency: int,
    seconds: float,
    protocol: str = "grpc",
    model: str = "",
    warmup_s: float = 0.5,
    headers: Mapping[str, str] | None = None,
) -> LoadResult:
    """run_load in a fresh `python -m bench.load` process (the client's CPU is its own);
    `headers` go with every request (passed through the environment, not argv)."""
    args = [
        sys.executable, "-m", "bench.load",
        "--target", target, "--deployment", deployment, "--model", model,
        "--protocol", protocol, "--concurrency", str(concurrency),
        "--seconds", str(seconds), "--warmup", str(warmup_s),
    ]  # fmt: skip
    env = {**os.environ, HEADERS_ENV: json.dumps(dict(headers or {}))}
    out = subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT, env=env).stdout
    return LoadResult(**json.loads(out))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True, help="host:port (gRPC or HTTP)")
    parser.add_argument("--deployment", default="demo")
    parser.add_argument("--model", default="", help="model name in requests (default: deployment)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="grpc")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--input-name", default="input")
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--features", type=int, default=784)
    args = parser.parse_args()
    extra = json.loads(os.environ.get(HEADERS_ENV) or "{}")
    work = Workload(
        args.deployment,
        args.model,
        args.input_name,
        args.rows,
        args.features,
        tuple((str(k).lower(), str(v)) for k, v in extra.items()),
    )
    result = asyncio.run(
        run_load(
            args.target,
            args.deployment,
            args.concurrency,
            args.seconds,
            args.warmup,
            args.protocol,
            work,
        )
    )
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
