"""Start a real Triton worker (`python -m workers.triton_worker` execs tritonserver) for tests.

    with running_triton_worker(tmp_path, model_path, extra_args=["--max-batch-size", "8"]) as t:
        triton_infer(t.grpc_target, "mnist", x, http_endpoint=t.http_endpoint) ...
        parse_load(t.metrics_text(), "mnist") ...

Built on the Torch worker's harness (same flags, same readiness probe, same process handling): a
TritonHandle is a WorkerHandle plus the metrics port and the generated repository. The worker is
stopped on exit, also when the block fails (its log is printed then).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness.processes import free_port
from tests.harness.worker import (
    DEFAULT_SIGNATURE,
    WorkerHandle,
    started_worker,
    worker_command,
)

MODULE = "workers.triton_worker"


@dataclass(frozen=True)
class TritonHandle:
    """A running Triton worker."""

    worker: WorkerHandle
    metrics_port: int
    repository_dir: Path

    @property
    def grpc_target(self) -> str:
        return self.worker.grpc_target

    @property
    def http_endpoint(self) -> str:
        """host:port, as tritonclient.http wants it."""
        return f"{self.worker.host}:{self.worker.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.worker.host}:{self.metrics_port}/metrics"

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            return str(response.read().decode())


def distinct_free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(host)
        if port not in ports:
            ports.append(port)
    return ports


def triton_worker_command(
    model_path: Path,
    *,
    grpc_port: int,
    http_port: int,
    metrics_port: int,
    repository_dir: Path,
    model_name: str = "mnist",
    model_version: str = "1",
    signature: Mapping[str, Any] = DEFAULT_SIGNATURE,
    worker_id: str = "",
    region: str = "",
    host: str = "127.0.0.1",
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The Torch worker's command line with Triton's module and its two extra flags."""
    triton_flags = ["--metrics-port", str(metrics_port), "--repository-dir", str(repository_dir)]
    return worker_command(
        model_path,
        grpc_port=grpc_port,
        http_port=http_port,
        model_name=model_name,
        model_version=model_version,
        signature=signature,
        worker_id=worker_id,
        region=region,
        host=host,
        extra_args=[*triton_flags, *extra_args],
        module=MODULE,
    )


@contextmanager
def running_triton_worker(
    log_dir: Path,
    model_path: Path,
    *,
    model_name: str = "mnist",
    model_version: str = "1",
    signature: Mapping[str, Any] = DEFAULT_SIGNATURE,
    worker_id: str = "",
    region: str = "test",
    extra_args: Sequence[str] = (),
    ready_timeout_s: float = 90.0,
    ports: tuple[int, int, int] | None = None,
) -> Iterator[TritonHandle]:
    """Start a Triton worker, wait until its model is ready, stop it on exit.

    `ports` (gRPC, HTTP, metrics) brings a server back on the same address; default: free ones.
    """
    host = "127.0.0.1"
    grpc_port, http_port, metrics_port = ports or distinct_free_ports(3, host)
    worker_id = worker_id or f"triton-{model_name}-{grpc_port}"
    repository_dir = log_dir / f"repository-{worker_id}"
    args = triton_worker_command(
        model_path,
        grpc_port=grpc_port,
        http_port=http_port,
        metrics_port=metrics_port,
        repository_dir=repository_dir,
        model_name=model_name,
        model_version=model_version,
        signature=signature,
        worker_id=worker_id,
        region=region,
        host=host,
        extra_args=extra_args,
    )
    with started_worker(
        log_dir,
        args,
        name=f"triton-{worker_id}",
        host=host,
        grpc_port=grpc_port,
        http_port=http_port,
        model_name=model_name,
        model_version=model_version,
        model_path=model_path,
        worker_id=worker_id,
        region=region,
        ready_timeout_s=ready_timeout_s,  # strict readiness: ready once the model is
    ) as worker:
        yield TritonHandle(worker=worker, metrics_port=metrics_port, repository_dir=repository_dir)
