"""Command line -> WorkerConfig. The agent starts workers with exactly these flags."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workers.flags import (
    Scheduling,
    add_scheduling_flags,
    non_negative_float,
    non_negative_int,
    port,
    positive_int,
    scheduling_from_args,
)
from workers.oip.errors import SignatureError
from workers.oip.signature import Signature

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
    # A forward pass expected to take at most this long runs on the event loop (0 = never).
    inline_max_ms: float = 0.5
    shutdown_grace_s: float = 5.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    warmup: bool = True
    log_level: str = "INFO"
    # The same flags a Triton worker takes, with Triton's meaning (workers/flags.py).
    scheduling: Scheduling = field(default_factory=Scheduling)


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
    add_server_flags(p)
    add_scheduling_flags(p)
    return p


def add_server_flags(p: argparse.ArgumentParser) -> None:
    """The flags of the process itself (addresses, threads, limits), the same in both modes."""
    p.add_argument("--host", default="127.0.0.1", help="address both servers listen on")
    p.add_argument("--grpc-port", required=True, type=port)
    p.add_argument("--http-port", required=True, type=port)
    p.add_argument("--worker-id", default="", help="reported in x-meshline-worker")
    p.add_argument("--region", default="local", help="reported in x-meshline-region")
    p.add_argument("--torch-threads", type=positive_int, default=1, help="torch intra-op threads")
    p.add_argument(
        "--inline-max-ms",
        type=non_negative_float,
        default=0.5,
        help="forward passes measured (at start) to take at most this long run on the event "
        "loop instead of the inference thread (saves the thread hand-off); 0 = never",
    )
    p.add_argument(
        "--shutdown-grace-s",
        type=non_negative_float,
        default=5.0,
        help="on SIGTERM, how long in-flight requests may take to finish",
    )
    p.add_argument(
        "--max-message-bytes",
        type=positive_int,
        default=DEFAULT_MAX_MESSAGE_BYTES,
        help="largest request/response body (gRPC message or HTTP body)",
    )
    p.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="skip the start-up forward passes that check the model against its signature "
        "and warm it up (TorchScript's profiling runs, each batch size) before it serves",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


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
    scheduling = scheduling_from_args(parser, ns)
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
        inline_max_ms=ns.inline_max_ms,
        shutdown_grace_s=ns.shutdown_grace_s,
        max_message_bytes=ns.max_message_bytes,
        warmup=ns.warmup,
        log_level=ns.log_level,
        scheduling=scheduling,
    )


# ---- shared mode: one process, many models ------------------------------------------------

SHARED_FLAG = "--shared"


@dataclass(frozen=True)
class SharedWorkerConfig:
    """A shared worker: no model at start; its agent loads and unloads them over the model
    repository extension, on the control port(s) only (the inference ports are the ones the
    gateway routes clients to). Batching is off (each model runs one request per forward
    pass)."""

    host: str
    grpc_port: int
    http_port: int
    control_port: int
    worker_id: str
    region: str
    torch_threads: int = 1
    instances: int = 1
    inline_max_ms: float = 0.5
    shutdown_grace_s: float = 5.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    warmup: bool = True
    log_level: str = "INFO"
    memory_budget_bytes: int = 0  # 0: no budget
    room_wait_s: float = 30.0
    activity_file: Path | None = None
    control_http_port: int | None = None
    control_host: str = "127.0.0.1"


def build_shared_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m workers.torch_worker --shared",
        description="Serve many TorchScript models in one process over the Open Inference "
        "Protocol v2 (gRPC and REST); models are loaded and unloaded through the model "
        "repository extension (RepositoryModelLoad, ...) on the control port only.",
    )
    p.add_argument(
        SHARED_FLAG,
        action="store_true",
        required=True,
        help="serve the models the repository API loads (no --model-* flags); batching and "
        "priority levels are off: each model runs one request per forward pass",
    )
    add_server_flags(p)
    p.add_argument(
        "--control-host",
        default="127.0.0.1",
        help="address the control port(s) listen on: loopback by default, whatever --host is "
        "(the repository loads any file of this host as a model: only the agent may reach it)",
    )
    p.add_argument(
        "--control-port",
        required=True,
        type=port,
        help="gRPC port (on --control-host) serving the model repository extension (load, unload, "
        "index) beside the inference RPCs and gRPC health: for the agent alone; the "
        "inference ports refuse repository calls",
    )
    p.add_argument(
        "--control-http-port",
        type=port,
        default=None,
        help="optional HTTP port (on --control-host) serving POST /v2/repository/... beside "
        "the /v2 API; without it the repository is served over gRPC only",
    )
    p.add_argument(
        "--memory-budget-bytes",
        type=non_negative_int,
        default=0,
        help="most memory the loaded models may hold together (each model's declared "
        "memory_bytes, else what the process grew by when it loaded); a load past it unloads "
        "the least recently used idle models first, or fails. 0 = no budget",
    )
    p.add_argument(
        "--room-wait-s",
        type=non_negative_float,
        default=30.0,
        help="how long a load that needs room waits for busy models to finish their requests "
        "(they admit no new ones meanwhile: those wait for their next load) before it fails "
        "with RESOURCE_EXHAUSTED",
    )
    p.add_argument(
        "--activity-file",
        type=Path,
        default=None,
        help="file naming the model(s) being loaded or running their first forward pass, so "
        "that the agent can tell which model took the process down if it crashes",
    )
    add_scheduling_flags(p)
    return p


def parse_shared_args(argv: Sequence[str]) -> SharedWorkerConfig:
    """Parse a shared worker's flags; exits with status 2 naming the flag on bad input."""
    parser = build_shared_parser()
    ns = parser.parse_args(argv)
    ports = {
        "--grpc-port": ns.grpc_port,
        "--http-port": ns.http_port,
        "--control-port": ns.control_port,
        "--control-http-port": ns.control_http_port,
    }
    seen: dict[int, str] = {}
    for flag, number in ports.items():
        if number is None:
            continue
        if number in seen:
            parser.error(f"{seen[number]} and {flag} must differ (both {number})")
        seen[number] = flag
    scheduling = scheduling_from_args(parser, ns)
    if scheduling.max_batch_size > 1 or scheduling.priority_levels > 0:
        parser.error(
            "--max-batch-size and --priority-levels: batching and priority levels are off in "
            "shared mode (each model runs one request per forward pass)"
        )
    if ns.activity_file is not None and not ns.activity_file.parent.is_dir():
        parser.error(f"--activity-file: no directory {ns.activity_file.parent}")
    worker_id = ns.worker_id or f"shared-{socket.gethostname()}-{os.getpid()}"
    return SharedWorkerConfig(
        host=ns.host,
        grpc_port=ns.grpc_port,
        http_port=ns.http_port,
        control_port=ns.control_port,
        worker_id=worker_id,
        region=ns.region,
        torch_threads=ns.torch_threads,
        instances=scheduling.instances,
        inline_max_ms=ns.inline_max_ms,
        shutdown_grace_s=ns.shutdown_grace_s,
        max_message_bytes=ns.max_message_bytes,
        warmup=ns.warmup,
        log_level=ns.log_level,
        memory_budget_bytes=ns.memory_budget_bytes,
        room_wait_s=ns.room_wait_s,
        activity_file=ns.activity_file,
        control_http_port=ns.control_http_port,
        control_host=ns.control_host,
    )


def parse_command_line(argv: Sequence[str] | None = None) -> WorkerConfig | SharedWorkerConfig:
    """`--shared` (exactly) selects the shared worker's flags; else one model's (parse_args)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if SHARED_FLAG in args:
        return parse_shared_args(args)
    return parse_args(args)
