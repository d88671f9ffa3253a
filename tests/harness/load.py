"""A client loop that keeps sending inference through a gateway and records every failure."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

import grpc
import numpy as np

from meshline.inference import grpc_service_pb2 as oip
from meshline.inference import grpc_service_pb2_grpc as oip_grpc


def infer_request(deployment: str, batch: np.ndarray, name: str = "input") -> oip.ModelInferRequest:
    request = oip.ModelInferRequest(model_name=deployment)
    tensor = request.inputs.add(name=name, datatype="FP32")
    tensor.shape.extend(batch.shape)
    request.raw_input_contents.append(np.ascontiguousarray(batch, dtype=np.float32).tobytes())
    return request


def output_array(response: oip.ModelInferResponse, index: int = 0) -> np.ndarray:
    out = response.outputs[index]
    return np.frombuffer(response.raw_output_contents[index], dtype=np.float32).reshape(
        list(out.shape)
    )


def rest_infer(
    address: str,
    deployment: str,
    batch: np.ndarray,
    timeout_s: float = 30,
    name: str = "input",
    headers: dict[str, str] | None = None,
) -> np.ndarray:
    """One FP32 tensor through OIP v2 REST (`address`: a gateway or a worker, host:port)."""
    return rest_infer_served(address, deployment, batch, timeout_s, name, headers)[0]


def rest_infer_served(
    address: str,
    deployment: str,
    batch: np.ndarray,
    timeout_s: float = 30,
    name: str = "input",
    headers: dict[str, str] | None = None,
) -> tuple[np.ndarray, str]:
    """`rest_infer`, and the region that served it (the worker's x-meshline-region header)."""
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "datatype": "FP32",
                    "shape": list(batch.shape),
                    "data": batch.flatten().tolist(),
                }
            ]
        }
    ).encode()
    request = urllib.request.Request(
        f"http://{address}/v2/models/{deployment}/infer",
        data=body,
        headers={"content-type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as reply:
        out = json.loads(reply.read())["outputs"][0]
        region = reply.headers.get("x-meshline-region", "")
    return np.asarray(out["data"], dtype=np.float32).reshape(out["shape"]), region


def served_by(metadata: object) -> dict[str, str]:
    """`{"region": ..., "worker": ...}` from a worker's x-meshline-* trailing metadata."""
    out = {}
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if key in ("x-meshline-region", "x-meshline-worker"):
            out[key.removeprefix("x-meshline-")] = str(value)
    return out


class Answer(NamedTuple):
    """One answered request: monotonic send and answer times, and who served it."""

    sent: float
    done: float
    region: str
    worker: str

    @property
    def latency(self) -> float:
        return self.done - self.sent


class Failure(NamedTuple):
    """One failed request: monotonic send and answer times, and what went wrong."""

    sent: float
    done: float
    reason: str


@dataclass
class ClientLoop:
    """Runs in a thread until stopped; `outputs` keeps the last answer for checks.

    gRPC `ModelInfer` by default; `rest` sends the same tensor to `/v2/models/{d}/infer`.
    """

    gateway: str
    deployment: str
    batch: np.ndarray
    environment: str = "production"
    concurrency: int = 2
    # Extra metadata on every request (e.g. a pinned version or a sticky-session header).
    extra_metadata: tuple[tuple[str, str], ...] = ()
    rest: bool = False
    # gRPC over TLS to a gateway with edge TLS, trusting these CA certificates (PEM).
    root_certificates: bytes | None = None
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    last_output: np.ndarray | None = None
    # (monotonic time, region that served it) of every answer, from the worker's trailers.
    served: list[tuple[float, str]] = field(default_factory=list)
    # Every answer with its latency and worker, and the monotonic time of every failure.
    answers: list[Answer] = field(default_factory=list)
    failed_at: list[float] = field(default_factory=list)
    # Every failure with the time its request was sent (`failures` and `failed_at` in one).
    failed: list[Failure] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _answered(self, sent: float, out: np.ndarray, by: dict[str, str]) -> None:
        done = time.monotonic()
        region = by.get("region", "")
        with self._lock:
            self.ok += 1
            self.last_output = out
            self.served.append((done, region))
            self.answers.append(Answer(sent, done, region, by.get("worker", "")))

    def _failed(self, reason: str, sent: float) -> None:
        done = time.monotonic()
        with self._lock:
            self.failed_at.append(done)
            self.failures.append(reason)
            self.failed.append(Failure(sent, done, reason))

    def _run_rest(self) -> None:
        headers = {"x-meshline-environment": self.environment, **dict(self.extra_metadata)}
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                out, region = rest_infer_served(
                    self.gateway, self.deployment, self.batch, timeout_s=10, headers=headers
                )
            except urllib.error.HTTPError as exc:
                reason = f"HTTP {exc.code}: {exc.read().decode(errors='replace')[:200]}"
                self._failed(reason, sent)
            except OSError as exc:  # refused, reset, timed out
                self._failed(f"{type(exc).__name__}: {exc}", sent)
            else:
                self._answered(sent, out, {"region": region})

    def _run(self) -> None:
        if self.rest:
            self._run_rest()
            return
        metadata = (
            ("x-meshline-deployment", self.deployment),
            ("x-meshline-environment", self.environment),
            *self.extra_metadata,
        )
        request = infer_request(self.deployment, self.batch)
        channel = (
            grpc.secure_channel(self.gateway, grpc.ssl_channel_credentials(self.root_certificates))
            if self.root_certificates is not None
            else grpc.insecure_channel(self.gateway)
        )
        with channel:
            stub = oip_grpc.GRPCInferenceServiceStub(channel)
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    response, call = stub.ModelInfer.with_call(
                        request, metadata=metadata, timeout=10
                    )
                except grpc.RpcError as exc:
                    reason = f"{exc.code().name}: {exc.details()}"
                    self._failed(reason, sent)
                else:
                    by = served_by(call.trailing_metadata())
                    self._answered(sent, output_array(response), by)

    def __enter__(self) -> ClientLoop:
        for i in range(self.concurrency):
            thread = threading.Thread(target=self._run, name=f"client-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def count(self) -> int:
        with self._lock:
            return self.ok

    def regions_since(self, since: float) -> Counter[str]:
        """How many answers each region served after monotonic time `since`."""
        with self._lock:
            return Counter(region for t, region in self.served if t >= since)
