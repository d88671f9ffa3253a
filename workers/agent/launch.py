"""How a workload becomes a worker process: the command line of each runtime.

Both runtimes take the same flags (model, signature, ports, batching), so a deployment moves
between `runtime: torch` and `runtime: triton` without anything else changing; Triton needs one
more port for its Prometheus metrics. External servers have no command at all.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from meshline.v1 import agent_pb2, resources_pb2

RUNTIME_TORCH = "torch"
RUNTIME_TRITON = "triton"
RUNTIME_EXTERNAL = "external"
TORCH_WORKER_MODULE = "workers.torch_worker"
_MODULES = {RUNTIME_TORCH: TORCH_WORKER_MODULE, RUNTIME_TRITON: "workers.triton_worker"}


def runtime_of(workload: agent_pb2.Workload) -> str:
    """torch, triton, or external (a server the agent only watches)."""
    if workload.HasField("external"):
        return RUNTIME_EXTERNAL
    return workload.runtime or RUNTIME_TORCH


@dataclass(frozen=True)
class WorkerPorts:
    host: str  # the worker's --host: loopback unless the agent got --worker-host
    grpc: int
    http: int
    metrics: int  # Triton's own metrics port; the Torch worker serves /metrics on `http`

    @property
    def metrics_url(self) -> str:
        port = self.metrics or self.http
        return f"http://{self.host}:{port}/metrics"


def signature_json(signature: resources_pb2.ModelSignature) -> dict[str, object]:
    """The worker's --signature: shapes as ints (proto JSON would quote int64s)."""
    return {
        side: [
            {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
            for t in getattr(signature, side)
        ]
        for side in ("inputs", "outputs")
    }


def batching_flags(workload: agent_pb2.Workload) -> list[str]:
    """The deployment's batching settings as worker flags (defaults left out)."""
    b = workload.batching
    flags: list[str] = []
    if b.max_batch_size > 1:
        flags += ["--max-batch-size", str(b.max_batch_size)]
        flags += ["--max-batch-delay-ms", f"{b.max_delay_ms:g}"]
        if b.preferred_batch_sizes:
            flags += ["--preferred-batch-sizes", ",".join(map(str, b.preferred_batch_sizes))]
    if b.priority_levels > 0:
        flags += ["--priority-levels", str(b.priority_levels)]
        if b.default_priority_level > 0:
            flags += ["--default-priority-level", str(b.default_priority_level)]
    if workload.instances > 1:
        flags += ["--instances", str(workload.instances)]
    return flags


def worker_command(
    workload: agent_pb2.Workload,
    *,
    worker_id: str,
    region: str,
    ports: WorkerPorts,
    scratch_dir: Path,
) -> list[str]:
    """The argv that starts this workload's worker; `scratch_dir` is the worker's own folder
    (Triton writes its generated model repository there)."""
    runtime = runtime_of(workload)
    module = _MODULES.get(runtime)
    if module is None:
        raise ValueError(f"runtime '{runtime}' has no worker process")
    args = [
        sys.executable,
        "-m",
        module,
        "--model-name",
        workload.deployment,
        "--model-version",
        workload.model_version,
        "--model-path",
        workload.model_path,
        "--signature",
        json.dumps(signature_json(workload.signature)),
        "--host",
        ports.host,
        "--grpc-port",
        str(ports.grpc),
        "--http-port",
        str(ports.http),
        "--worker-id",
        worker_id,
        "--region",
        region,
        *batching_flags(workload),
    ]
    if runtime == RUNTIME_TRITON:
        args += [
            "--metrics-port",
            str(ports.metrics),
            "--repository-dir",
            str(scratch_dir / "model-repository"),
        ]
    return args
