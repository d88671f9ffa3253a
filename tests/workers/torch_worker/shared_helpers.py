"""Helpers for the shared-worker tests: a gated model, a running shared worker, repository calls.

Order-sensitive tests use a model that, for a flagged request (x[:, 1] > 0), spins until a gate
file holds 1 (as test_batching's probe): the test closes the gate, sends the flagged request, sees
it in flight in the worker's own /metrics, acts (unload, load another model), then opens the gate.
What is asserted is what each request got, never how fast.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import torch
from prometheus_client.parser import text_string_to_metric_families

from meshline.inference import grpc_service_pb2 as pb
from meshline.inference import grpc_service_pb2_grpc as pb_grpc
from tests.harness.processes import free_port
from tests.harness.worker import WorkerHandle, started_worker
from tests.workers.torch_worker.helpers import http
from workers.demo import DEMO_SIGNATURE

GUARD_S = 60.0  # a hang guard only

GATED_SIGNATURE: dict[str, Any] = {
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 4]}],
}


class Gated(torch.nn.Module):
    """y = 2x + bias; -1 anywhere raises; a row with x[:, 1] > 0 (or, with `gate_zeros`, an
    all-zero input: the worker's warm-up at load) waits until the gate file holds 1."""

    def __init__(self, gate: str, bias: float = 0.0, gate_zeros: bool = False) -> None:
        super().__init__()
        self.gate = gate
        self.bias = bias
        self.gate_zeros = gate_zeros

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x == -1.0).any()):
            raise RuntimeError("gated model: poisoned input")
        flagged = x.shape[0] > 0 and bool((x[:, 1] > 0).any())
        zeros = self.gate_zeros and bool((x == 0.0).all())
        opened = torch.ones(1)
        if flagged or zeros:
            # The read must feed the output (else the JIT drops it as dead code), and its size
            # comes from the data (else it is folded into a constant).
            size = max(int(x[:, 1].max().item()), 1)
            flag = torch.from_file(self.gate, False, size, dtype=torch.uint8)
            spins = 0
            while int(flag[0]) == 0:
                spins += 1
                flag = torch.from_file(self.gate, False, size + spins % 2, dtype=torch.uint8)
            opened = flag[:1].float()
        return x * 2 * opened + self.bias


def build_gated(path: Path, gate: Gate, bias: float = 0.0, gate_zeros: bool = False) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(Gated(str(gate.path), bias, gate_zeros)), str(path))
    return path


@dataclass(frozen=True)
class Gate:
    """A two-byte file the gated model polls; replaced atomically, so it is never short."""

    path: Path

    def set(self, value: int) -> None:
        partial = self.path.with_suffix(".partial")
        partial.write_bytes(bytes([value, value]))
        os.replace(partial, self.path)

    @contextmanager
    def closed(self) -> Iterator[None]:
        self.set(0)
        try:
            yield
        finally:
            self.set(1)


def flagged_row(value: float = 1.0) -> np.ndarray:
    """A gated-model input that waits for the gate (x[:, 1] = 1)."""
    return np.array([[value, 1.0, value, 0.0]], dtype=np.float32)


def free_row(value: float = 1.0) -> np.ndarray:
    """A gated-model input that runs at once."""
    return np.array([[value, 0.0, value, 0.0]], dtype=np.float32)


# ---- a shared worker process -----------------------------------------------------------------


@dataclass(frozen=True)
class SharedWorkerHandle(WorkerHandle):
    """A running shared worker: its inference ports (where a gateway routes clients) and its
    control ports (the model repository, for the agent alone)."""

    control_port: int = 0
    control_http_port: int | None = None

    @property
    def control_target(self) -> str:
        return f"{self.host}:{self.control_port}"

    @property
    def control_http_url(self) -> str:
        assert self.control_http_port is not None, "started without a control HTTP port"
        return f"http://{self.host}:{self.control_http_port}"


def distinct_free_ports(host: str, count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        candidate = free_port(host)
        if candidate not in ports:
            ports.append(candidate)
    return ports


@contextmanager
def running_shared_worker(
    log_dir: Path,
    extra_args: list[str] | None = None,
    worker_id: str = "",
    control_http: bool = True,
) -> Iterator[SharedWorkerHandle]:
    """`python -m workers.torch_worker --shared` on free ports, with a control gRPC port (and a
    control HTTP port, unless `control_http` is False); stopped on exit."""
    host = "127.0.0.1"
    grpc_port, http_port, control_port, control_http_port = distinct_free_ports(host, 4)
    worker_id = worker_id or f"shared-{grpc_port}"
    args = [
        sys.executable, "-m", "workers.torch_worker", "--shared",
        "--host", host,
        "--grpc-port", str(grpc_port),
        "--http-port", str(http_port),
        "--control-port", str(control_port),
        "--worker-id", worker_id,
        "--region", "test",
        *(["--control-http-port", str(control_http_port)] if control_http else []),
        *(extra_args or []),
    ]  # fmt: skip
    with started_worker(
        log_dir,
        args,
        name=f"worker-{worker_id}",
        host=host,
        grpc_port=grpc_port,
        http_port=http_port,
        model_name="",
        model_version="",
        model_path=Path(),
        worker_id=worker_id,
        region="test",
        ready_timeout_s=60.0,
    ) as handle:
        yield SharedWorkerHandle(
            **{f.name: getattr(handle, f.name) for f in fields(WorkerHandle)},
            control_port=control_port,
            control_http_port=control_http_port if control_http else None,
        )


def config_of(
    path: Path,
    signature: Mapping[str, Any] = DEMO_SIGNATURE,
    version: str = "1",
    memory_bytes: int | None = None,
) -> str:
    """A load request's `config` parameter."""
    document: dict[str, Any] = {"version": version, "path": str(path), "signature": signature}
    if memory_bytes is not None:
        document["memory_bytes"] = memory_bytes
    return json.dumps(document)


def load_request(name: str, config: str | None = None) -> pb.RepositoryModelLoadRequest:
    request = pb.RepositoryModelLoadRequest(model_name=name)
    if config is not None:
        request.parameters["config"].string_param = config
    return request


def grpc_load(control: pb_grpc.GRPCInferenceServiceStub, name: str, config: str | None) -> None:
    """Load over a control-port stub (control_stub_of)."""
    control.RepositoryModelLoad(load_request(name, config), timeout=GUARD_S)


def index(control: pb_grpc.GRPCInferenceServiceStub) -> dict[str, tuple[str, str, str]]:
    """name -> (version, state, reason), over a control-port stub."""
    reply = control.RepositoryIndex(pb.RepositoryIndexRequest(), timeout=GUARD_S)
    return {m.name: (m.version, m.state, m.reason) for m in reply.models}


def infer_request(model: str, x: np.ndarray, input_name: str = "input") -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name=input_name, datatype="FP32", shape=x.shape)
    request.raw_input_contents.append(x.tobytes())
    return request


def output_of(response: pb.ModelInferResponse) -> np.ndarray:
    tensor = response.outputs[0]
    return np.frombuffer(response.raw_output_contents[0], np.float32).reshape(tuple(tensor.shape))


def metric(worker: WorkerHandle, name: str, **labels: str) -> float:
    """The sum of `name`'s samples with these labels in the worker's /metrics."""
    return sum(metric_samples(worker, name, **labels))


def metric_samples(worker: WorkerHandle, name: str, **labels: str) -> list[float]:
    """`name`'s samples with these labels in the worker's /metrics (none: not exported)."""
    reply = http(f"{worker.http_url}/metrics")
    assert reply.status == 200
    return [
        sample.value
        for family in text_string_to_metric_families(reply.body.decode())
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]


@contextmanager
def stub_of(worker: WorkerHandle) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    """A stub on the worker's inference port (where a gateway routes clients)."""
    with grpc.insecure_channel(worker.grpc_target) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


@contextmanager
def control_stub_of(worker: SharedWorkerHandle) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    """A stub on the shared worker's control port (the model repository: the agent's)."""
    with grpc.insecure_channel(worker.control_target) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)
