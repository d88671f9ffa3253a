"""Process entry: parse flags, then hand over to the server; exit statuses and early signals.

Flag and file errors are reported before torch, gRPC and aiohttp are imported (those take over a
second), so a misconfigured start fails at once: status 2 for bad flags, 1 for a bad model file
or a port that cannot be bound, 0 after a stop signal.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from workers.oip.errors import ModelLoadError
from workers.oip.model_file import check_model_file
from workers.torch_worker.config import SharedWorkerConfig, WorkerConfig, parse_command_line

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one worker; returns the process exit status."""
    config = parse_command_line(argv)
    logging.basicConfig(
        level=config.log_level,
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s torch_worker[{config.worker_id}] %(message)s",
    )
    early_stop: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        early_stop.append(signum)

    for sig in STOP_SIGNALS:  # until the event loop takes over: a stop while loading exits 0
        signal.signal(sig, remember)

    if isinstance(config, WorkerConfig):
        try:
            check_model_file(config.model_path)
        except ModelLoadError as exc:
            return fail(exc)

    try:
        return run(config, stop_requested=lambda: bool(early_stop))
    except (ModelLoadError, OSError) as exc:
        fail(exc)
        # gRPC's poller thread can abort the interpreter's shutdown ("epoll_wait error: Bad file
        # descriptor", status -6) when a start fails under load: the reason above would then not
        # be the log's last line and the status not 1. Nothing is left to clean up: leave now.
        logging.shutdown()
        os._exit(1)


def run(config: WorkerConfig | SharedWorkerConfig, stop_requested: Callable[[], bool]) -> int:
    """One model's worker, or a shared one (`--shared`); raises ModelLoadError or OSError."""
    if isinstance(config, SharedWorkerConfig):
        from workers.torch_worker import shared_server  # heavy: torch, grpc, aiohttp

        return shared_server.run(config, stop_requested)
    from workers.torch_worker import server  # heavy: torch, grpc, aiohttp

    return server.run(config, stop_requested)


def fail(exc: Exception) -> int:
    print(f"torch_worker: error: {exc}", file=sys.stderr, flush=True)
    return 1
