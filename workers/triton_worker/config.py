"""Command line -> TritonWorkerConfig.

The agent starts both runtimes with the same flags (workers/agent/launch.py), so this parser takes
the Torch worker's flags and helpers (workers/torch_worker/config.py) plus Triton's own two:
--metrics-port and --repository-dir. Bad input exits with status 2 and a message naming the flag.
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

from workers.torch_worker.config import _int, _non_negative_float, _port, _positive_int
from workers.torch_worker.errors import SignatureError
from workers.torch_worker.signature import Signature

PROG = "python -m workers.triton_worker"


@dataclass(frozen=True)
class Batching:
    """Dynamic batching and priority settings, already checked against each other.

    Priority levels follow Triton: 1 is the highest priority, `levels` the lowest; 0 levels means
    no priorities at all.
    """

    max_batch_size: int = 1
    max_delay_ms: float = 0.0
    preferred_batch_sizes: tuple[int, ...] = ()
    priority_levels: int = 0
    default_priority_level: int = 0


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
    batching: Batching = field(default_factory=Batching)
    instances: int = 1
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
    p.add_argument("--grpc-port", required=True, type=_port)
    p.add_argument("--http-port", required=True, type=_port)
    p.add_argument("--metrics-port", required=True, type=_port, help="Prometheus /metrics")
    p.add_argument("--worker-id", default="", help="Triton's --id (server metadata)")
    p.add_argument("--region", default="local", help="where this worker runs (for logs)")
    p.add_argument(
        "--repository-dir",
        type=Path,
        default=None,
        help="where the generated model repository is written (rewritten at every start); "
        "default: <tmp>/meshline-triton-<worker-id>",
    )
    p.add_argument("--max-batch-size", type=_positive_int, default=1)
    p.add_argument(
        "--max-batch-delay-ms",
        type=_non_negative_float,
        default=0.0,
        help="how long Triton may hold a request to fill a batch",
    )
    p.add_argument("--preferred-batch-sizes", type=_size_list, default=(), help='e.g. "4,8"')
    p.add_argument("--priority-levels", type=_non_negative_int, default=0)
    p.add_argument(
        "--default-priority-level",
        type=_int,
        default=None,
        help="priority of requests that name none (default: the lowest, = --priority-levels)",
    )
    p.add_argument("--instances", type=_positive_int, default=1, help="model instances (CPU)")
    p.add_argument("--torch-threads", type=_positive_int, default=1, help="per instance")
    p.add_argument(
        "--shutdown-grace-s",
        type=_non_negative_float,
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
    for i, (flag, port) in enumerate(ports):
        for other, other_port in ports[:i]:
            if port == other_port:
                parser.error(f"{other} and {flag} must differ (both {port})")
    if not _valid_model_name(ns.model_name):
        parser.error(f"--model-name: invalid name {ns.model_name!r} (Triton needs a folder name)")
    if not ns.model_version.strip():
        parser.error("--model-version: must not be empty")
    batching = _batching(parser, ns)
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
        batching=batching,
        instances=ns.instances,
        torch_threads=ns.torch_threads,
        shutdown_grace_s=ns.shutdown_grace_s,
        log_level=ns.log_level,
    )


def default_repository_dir(worker_id: str) -> Path:
    """<tmp>/meshline-triton-<worker-id>: one per worker, rewritten at each start (exec leaves
    nobody behind to remove it on exit)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", worker_id)
    return Path(tempfile.gettempdir()) / f"meshline-triton-{safe}"


def _batching(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> Batching:
    for size in ns.preferred_batch_sizes:
        if size > ns.max_batch_size:
            parser.error(
                f"--preferred-batch-sizes: {size} is larger than --max-batch-size "
                f"{ns.max_batch_size}"
            )
    levels: int = ns.priority_levels
    default: int | None = ns.default_priority_level
    if levels == 0:
        if default not in (None, 0):
            parser.error("--default-priority-level needs --priority-levels > 0")
        default = 0
    elif default is None or default == 0:
        default = levels
    elif not 1 <= default <= levels:
        parser.error(
            f"--default-priority-level: must be between 1 and --priority-levels {levels} "
            f"(got {default})"
        )
    return Batching(
        max_batch_size=ns.max_batch_size,
        max_delay_ms=ns.max_batch_delay_ms,
        preferred_batch_sizes=tuple(ns.preferred_batch_sizes),
        priority_levels=levels,
        default_priority_level=default,
    )


def _valid_model_name(name: str) -> bool:
    return bool(name.strip()) and "/" not in name and name not in (".", "..")


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def _size_list(text: str) -> tuple[int, ...]:
    """Parse "4,8" as (4, 8): sizes >= 1, each at most once."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    sizes = tuple(_positive_int(p) for p in parts)
    if len(set(sizes)) != len(sizes):
        raise argparse.ArgumentTypeError(f"a size is given twice: {text!r}")
    return sizes
