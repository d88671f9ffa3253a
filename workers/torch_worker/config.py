"""Command line -> WorkerConfig. The agent starts workers with exactly these flags."""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workers.torch_worker.errors import ModelLoadError, SignatureError
from workers.torch_worker.signature import Signature

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class WorkerConfig:
    """Everything one worker process needs; immutable once parsed."""

    model_name: str
    model_version: str
    model_path: Path
    signature: Signature
    host: str
    grpc_port: int
    http_port: int
    worker_id: str
    region: str
    torch_threads: int = 1
    shutdown_grace_s: float = 5.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    warmup: bool = True
    log_level: str = "INFO"
    # Scheduling (the same flags a Triton worker takes, with Triton's meaning).
    max_batch_size: int = 1
    max_batch_delay_ms: float = 0.0
    preferred_batch_sizes: tuple[int, ...] = ()
    priority_levels: int = 0
    # Resolved: 0 on the command line (or no flag) means the lowest level, `priority_levels`.
    default_priority_level: int = 0
    instances: int = 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m workers.torch_worker",
        description="Serve one TorchScript model over the Open Inference Protocol v2 "
        "(gRPC and REST).",
    )
    p.add_argument("--model-name", required=True, help="name clients use in requests")
    p.add_argument("--model-version", default="1", help="version this worker serves")
    p.add_argument("--model-path", required=True, type=Path, help="TorchScript file (.pt)")
    sig = p.add_mutually_exclusive_group(required=True)
    sig.add_argument("--signature", help="inputs/outputs as JSON")
    sig.add_argument("--signature-file", type=Path, help="file holding the signature JSON")
    p.add_argument("--host", default="127.0.0.1", help="address both servers listen on")
    p.add_argument("--grpc-port", required=True, type=_port)
    p.add_argument("--http-port", required=True, type=_port)
    p.add_argument("--worker-id", default="", help="reported in x-meshline-worker")
    p.add_argument("--region", default="local", help="reported in x-meshline-region")
    p.add_argument("--torch-threads", type=_positive_int, default=1, help="torch intra-op threads")
    p.add_argument(
        "--shutdown-grace-s",
        type=_non_negative_float,
        default=5.0,
        help="on SIGTERM, how long in-flight requests may take to finish",
    )
    p.add_argument(
        "--max-message-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_MESSAGE_BYTES,
        help="largest request/response body (gRPC message or HTTP body)",
    )
    p.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="skip the start-up forward pass that checks the model against its signature",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    batching = p.add_argument_group("scheduling (as Triton's dynamic batcher)")
    batching.add_argument(
        "--max-batch-size",
        type=_positive_int,
        default=1,
        help="most rows (sum of the requests' first dimension) merged into one forward pass; "
        "1 = no batching",
    )
    batching.add_argument(
        "--max-batch-delay-ms",
        type=_non_negative_float,
        default=0.0,
        help="longest a queued request waits for batch-mates before its batch runs anyway",
    )
    batching.add_argument(
        "--preferred-batch-sizes",
        type=_int_list,
        default=(),
        help="comma list of row counts (each <= --max-batch-size) a batch may run at once at",
    )
    batching.add_argument(
        "--priority-levels",
        type=_non_negative_int,
        default=0,
        help="number of request priority levels (1 = highest); 0 = priority is ignored",
    )
    batching.add_argument(
        "--default-priority-level",
        type=_non_negative_int,
        default=None,
        help="level of requests that give no priority (or 0); default: the lowest level",
    )
    batching.add_argument(
        "--instances",
        type=_positive_int,
        default=1,
        help="forward passes that may run at the same time",
    )
    return p


def parse_args(argv: Sequence[str] | None = None) -> WorkerConfig:
    """Parse flags; exits with status 2 and a message naming the flag on bad input."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        if ns.signature_file is not None:
            signature = Signature.from_file(ns.signature_file)
        else:
            signature = Signature.from_json(ns.signature)
    except SignatureError as exc:
        parser.error(str(exc))
    if ns.grpc_port == ns.http_port:
        parser.error(f"--grpc-port and --http-port must differ (both {ns.grpc_port})")
    if not ns.model_name.strip() or "/" in ns.model_name:
        parser.error(f"--model-name: invalid name {ns.model_name!r}")
    for size in ns.preferred_batch_sizes:
        if size > ns.max_batch_size:
            parser.error(
                f"argument --preferred-batch-sizes: {size} is larger than --max-batch-size "
                f"{ns.max_batch_size}"
            )
    default_level = ns.default_priority_level
    if default_level is not None and default_level > ns.priority_levels:
        parser.error(
            f"argument --default-priority-level: {default_level} is outside "
            f"0..{ns.priority_levels} (--priority-levels {ns.priority_levels})"
        )
    worker_id = ns.worker_id or f"{ns.model_name}-{socket.gethostname()}-{os.getpid()}"
    return WorkerConfig(
        model_name=ns.model_name,
        model_version=ns.model_version,
        model_path=ns.model_path,
        signature=signature,
        host=ns.host,
        grpc_port=ns.grpc_port,
        http_port=ns.http_port,
        worker_id=worker_id,
        region=ns.region,
        torch_threads=ns.torch_threads,
        shutdown_grace_s=ns.shutdown_grace_s,
        max_message_bytes=ns.max_message_bytes,
        warmup=ns.warmup,
        log_level=ns.log_level,
        max_batch_size=ns.max_batch_size,
        max_batch_delay_ms=ns.max_batch_delay_ms,
        preferred_batch_sizes=ns.preferred_batch_sizes,
        priority_levels=ns.priority_levels,
        default_priority_level=default_level or ns.priority_levels,
        instances=ns.instances,
    )


def _port(text: str) -> int:
    value = _int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return value


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def _int_list(text: str) -> tuple[int, ...]:
    """Parse "4,8" into (4, 8): sorted, without duplicates; "" is ()."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    return tuple(sorted({_positive_int(item) for item in items}))


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def check_model_file(path: Path) -> None:
    """ModelLoadError naming `path` unless it is an existing file (cheap: no torch needed)."""
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelLoadError(f"model path is not a file: {path}")
