"""Command line -> TritonWorkerConfig.

The agent starts both runtimes with the same flags (workers/agent/launch.py), so this parser takes
the Torch worker's flags (the scheduling ones and the value types shared in workers/flags.py) plus
Triton's own two: --metrics-port and --repository-dir. Bad input exits with status 2 and a message
naming the flag.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workers.flags import (
    Scheduling,
    add_scheduling_flags,
    non_negative_float,
    port,
    positive_int,
    scheduling_from_args,
)
from workers.oip.errors import SignatureError
from workers.oip.signature import Signature

PROG = "python -m workers.triton_worker"


@dataclass(frozen=True)
class TritonWorkerConfig:
    """Everything one Triton worker needs; immutable once parsed."""

    model_name: str
    model_version: str
    model_path: Path
    signature: Signature
    host: str
    grpc_port: int
    http_port: int
    metrics_port: int
    worker_id: str
    region: str
    repository_dir: Path
    scheduling: Scheduling = field(default_factory=Scheduling)
    torch_threads: int = 1
    shutdown_grace_s: float = 5.0
    log_level: str = "INFO"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Serve one TorchScript model with the real tritonserver (Python backend) "
        "over the Open Inference Protocol v2 (gRPC and REST).",
    )
    p.add_argument("--model-name", required=True, help="name clients use in requests")
    p.add_argument(
        "--model-version",
        default="1",
        help="version label; a positive integer is also Triton's version directory, any "
        "other label is served as Triton version 1",
    )
    p.add_argument("--model-path", required=True, type=Path, help="TorchScript file (.pt)")
    sig = p.add_mutually_exclusive_group(required=True)
    sig.add_argument("--signature", help="inputs/outputs as JSON")
    sig.add_argument("--signature-file", type=Path, help="file holding the signature JSON")
    p.add_argument("--host", default="127.0.0.1", help="address all three servers listen on")
    p.add_argument("--grpc-port", required=True, type=port)
    p.add_argument("--http-port", required=True, type=port)
    p.add_argument("--metrics-port", required=True, type=port, help="Prometheus /metrics")
    p.add_argument("--worker-id", default="", help="Triton's --id (server metadata)")
    p.add_argument("--region", default="local", help="where this worker runs (for logs)")
    p.add_argument(
        "--repository-dir",
        type=Path,
        default=None,
        help="where the generated model repository is written (rewritten at every start); "
        "default: <tmp>/meshline-triton-<worker-id>",
    )
    add_scheduling_flags(p)
    p.add_argument("--torch-threads", type=positive_int, default=1, help="per instance")
    p.add_argument(
        "--shutdown-grace-s",
        type=non_negative_float,
        default=5.0,
        help="on SIGTERM, how long in-flight requests may take (Triton's --exit-timeout-secs)",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def parse_args(argv: Sequence[str] | None = None) -> TritonWorkerConfig:
    """Parse flags; exits with status 2 and a message naming the flag on bad input."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        if ns.signature_file is not None:
            signature = Signature.from_file(ns.signature_file)
        else:
            signature = Signature.from_json(ns.signature)
    except SignatureError as exc:
        parser.error(f"--signature: {exc}")
    ports = [
        ("--grpc-port", ns.grpc_port),
        ("--http-port", ns.http_port),
        ("--metrics-port", ns.metrics_port),
    ]
    for i, (flag, number) in enumerate(ports):
        for other, other_number in ports[:i]:
            if number == other_number:
                parser.error(f"{other} and {flag} must differ (both {number})")
    if not _valid_model_name(ns.model_name):
        parser.error(f"--model-name: invalid name {ns.model_name!r} (Triton needs a folder name)")
    if not ns.model_version.strip():
        parser.error("--model-version: must not be empty")
    scheduling = scheduling_from_args(parser, ns)
    worker_id = ns.worker_id or f"{ns.model_name}-{socket.gethostname()}-{os.getpid()}"
    repository_dir = ns.repository_dir or default_repository_dir(worker_id)
    return TritonWorkerConfig(
        model_name=ns.model_name,
        model_version=ns.model_version,
        model_path=ns.model_path,
        signature=signature,
        host=ns.host,
        grpc_port=ns.grpc_port,
        http_port=ns.http_port,
        metrics_port=ns.metrics_port,
        worker_id=worker_id,
        region=ns.region,
        repository_dir=repository_dir,
        scheduling=scheduling,
        torch_threads=ns.torch_threads,
        shutdown_grace_s=ns.shutdown_grace_s,
        log_level=ns.log_level,
    )


def default_repository_dir(worker_id: str) -> Path:
    """<tmp>/meshline-triton-<worker-id>: one per worker, rewritten at each start (exec leaves
    nobody behind to remove it on exit)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", worker_id)
    return Path(tempfile.gettempdir()) / f"meshline-triton-{safe}"


def _valid_model_name(name: str) -> bool:
    return bool(name.strip()) and "/" not in name and name not in (".", "..")
