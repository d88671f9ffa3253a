"""A closed-loop gRPC load generator: N requests in flight for a fixed time.

Runs in its own process (`python -m bench.load ...`) so the client's CPU use is
the same whichever target it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass

import grpc
import numpy as np

from meshline.inference import grpc_service_pb2 as oip
from meshline.inference import grpc_service_pb2_grpc as oip_grpc


@dataclass(frozen=True)
class LoadResult:
    target: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


def _request(deployment: str) -> oip.ModelInferRequest:
    x = np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)
    request = oip.ModelInferRequest(model_name=deployment)
    tensor = request.inputs.add(name="input", datatype="FP32")
    tensor.shape.extend(x.shape)
    request.raw_input_contents.append(x.tobytes())
    return request


async def run_load(
    target: str, deployment: str, concurrency: int, seconds: float, warmup_s: float
) -> LoadResult:
    request = _request(deployment)
    metadata = (("x-meshline-deployment", deployment),)
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        start = time.perf_counter()
        measure_from = start + warmup_s
        stop_at = measure_from + seconds

        async def worker() -> None:
            nonlocal errors
            while (now := time.perf_counter()) < stop_at:
                try:
                    await stub.ModelInfer(request, metadata=metadata, timeout=10)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                if now >= measure_from:
                    latencies.append(time.perf_counter() - now)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    ms = np.asarray(latencies) * 1000
    return LoadResult(
        target,
        concurrency,
        len(latencies),
        errors,
        seconds,
        float(np.percentile(ms, 50)) if len(ms) else 0.0,
        float(np.percentile(ms, 99)) if len(ms) else 0.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--deployment", default="demo")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    result = asyncio.run(
        run_load(args.target, args.deployment, args.concurrency, args.seconds, args.warmup)
    )
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
