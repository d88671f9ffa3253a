"""Start a real Torch worker process for tests (reusable by any test that needs a worker).

    with running_worker(tmp_path, model_path) as w:
        grpc.insecure_channel(w.grpc_target) ...
        urllib.request.urlopen(w.http_url + "/v2/health/ready") ...

The worker is stopped on exit, also when the block fails (its log is printed then).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness.processes import ManagedProcess, free_port, managed

DEFAULT_SIGNATURE: dict[str, Any] = {
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 784]}],
    "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}],
}


@dataclass(frozen=True)
class WorkerHandle:
    """A running worker: its process, ports and the names it was started with."""

    process: ManagedProcess
    host: str
    grpc_port: int
    http_port: int
    model_name: str
    model_version: str
    model_path: Path
    worker_id: str
    region: str

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"


def worker_command(
    model_path: Path,
    *,
    grpc_port: int,
    http_port: int,
    model_name: str = "mnist",
    model_version: str = "1",
    signature: Mapping[str, Any] = DEFAULT_SIGNATURE,
    worker_id: str = "",
    region: str = "",
    host: str = "127.0.0.1",
    extra_args: Sequence[str] = (),
    module: str = "workers.torch_worker",
) -> list[str]:
    """The command line the agent uses to start a worker (either runtime: same flags)."""
    args = [
        sys.executable, "-m", module,
        "--model-name", model_name,
        "--model-version", model_version,
        "--model-path", str(model_path),
        "--signature", json.dumps(signature),
        "--host", host,
        "--grpc-port", str(grpc_port),
        "--http-port", str(http_port),
    ]  # fmt: skip
    if worker_id:
        args += ["--worker-id", worker_id]
    if region:
        args += ["--region", region]
    return args + list(extra_args)


def scheduling_args(
    *,
    max_batch_size: int = 1,
    max_batch_delay_ms: float = 0.0,
    preferred_batch_sizes: Sequence[int] = (),
    priority_levels: int = 0,
    default_priority_level: int | None = None,
    instances: int = 1,
) -> list[str]:
    """The batching / priority / instances flags, for `extra_args` (the agent passes the same)."""
    args = [
        "--max-batch-size", str(max_batch_size),
        "--max-batch-delay-ms", f"{max_batch_delay_ms:g}",
        "--priority-levels", str(priority_levels),
        "--instances", str(instances),
    ]  # fmt: skip
    if preferred_batch_sizes:
        args += ["--preferred-batch-sizes", ",".join(map(str, preferred_batch_sizes))]
    if default_priority_level is not None:
        args += ["--default-priority-level", str(default_priority_level)]
    return args


def http_ready(url: str) -> bool:
    """GET {url}/v2/health/ready answers 200."""
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_ready(handle: WorkerHandle, timeout_s: float = 60.0) -> None:
    """Poll readiness; fail at once (with the log) if the process exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not handle.process.alive():
            raise RuntimeError(
                f"worker {handle.worker_id} exited with {handle.process.proc.returncode} "
                f"before it was ready:\n{handle.process.log()[-4000:]}"
            )
        if http_ready(handle.http_url):
            return
        time.sleep(0.05)
    raise TimeoutError(f"worker {handle.worker_id} not ready after {timeout_s}s")


@contextmanager
def started_worker(
    log_dir: Path,
    args: Sequence[str],
    *,
    name: str,
    host: str,
    grpc_port: int,
    http_port: int,
    model_name: str,
    model_version: str,
    model_path: Path,
    worker_id: str,
    region: str,
    ready_timeout_s: float,
) -> Iterator[WorkerHandle]:
    """Run `args` as a worker process, wait until it is ready, stop it on exit."""
    with managed(name, list(args), log_dir) as process:
        handle = WorkerHandle(
            process=process,
            host=host,
            grpc_port=grpc_port,
            http_port=http_port,
            model_name=model_name,
            model_version=model_version,
            model_path=model_path,
            worker_id=worker_id,
            region=region,
        )
        wait_ready(handle, ready_timeout_s)
        yield handle


@contextmanager
def running_worker(
    log_dir: Path,
    model_path: Path,
    *,
    model_name: str = "mnist",
    model_version: str = "1",
    signature: Mapping[str, Any] = DEFAULT_SIGNATURE,
    worker_id: str = "",
    region: str = "test",
    extra_args: Sequence[str] = (),
    ready_timeout_s: float = 60.0,
) -> Iterator[WorkerHandle]:
    """Start a worker on free ports, wait until it is ready, stop it on exit."""
    host = "127.0.0.1"
    grpc_port = free_port(host)
    http_port = free_port(host)
    while http_port == grpc_port:
        http_port = free_port(host)
    worker_id = worker_id or f"{model_name}-{model_version}-{grpc_port}"
    args = worker_command(
        model_path,
        grpc_port=grpc_port,
        http_port=http_port,
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
        name=f"worker-{worker_id}",
        host=host,
        grpc_port=grpc_port,
        http_port=http_port,
        model_name=model_name,
        model_version=model_version,
        model_path=model_path,
        worker_id=worker_id,
        region=region,
        ready_timeout_s=ready_timeout_s,
    ) as handle:
        yield handle
