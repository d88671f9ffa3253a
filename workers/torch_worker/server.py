"""Assemble and run the worker: load the model, then serve gRPC and REST on one asyncio loop.

Order matters: the model is loaded (and warmed up) before any port opens, so "listening" already
means "ready". On SIGTERM/SIGINT: health goes NOT_SERVING, both servers stop accepting, requests in
flight get `--shutdown-grace-s` to finish, and run() returns 0.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import os
from collections.abc import Callable

from aiohttp import web

from workers.torch_worker.batcher import BatchPolicy, batching_blocker
from workers.torch_worker.config import WorkerConfig
from workers.torch_worker.dataplane import DataPlane
from workers.torch_worker.grpc_adapter import InferenceServicer, build_grpc_server
from workers.torch_worker.health import HealthState
from workers.torch_worker.identity import WorkerIdentity
from workers.torch_worker.main import STOP_SIGNALS
from workers.torch_worker.metrics import WorkerMetrics
from workers.torch_worker.rest_adapter import build_rest_app
from workers.torch_worker.runtime import TorchRuntime

log = logging.getLogger("workers.torch_worker")


def run(config: WorkerConfig, stop_requested: Callable[[], bool] = lambda: False) -> int:
    """Load, serve until a stop signal, drain; the exit status.

    Raises ModelLoadError (bad model file) or OSError (a port cannot be bound).
    """
    runtime = TorchRuntime(
        config.model_path,
        config.signature,
        config.torch_threads,
        config.scheduling.instances,
        inline_budget_s=config.inline_max_ms / 1000.0,
    )
    runtime.load()
    if config.warmup:
        runtime.warmup(warmup_batch_sizes(config))
    if stop_requested():
        log.info("stopped by a signal while loading")
        return 0
    status = asyncio.run(serve(config, runtime))
    if runtime.busy:
        # A forward pass outlived the grace period; its thread cannot be interrupted and would
        # block interpreter exit, so leave now.
        log.warning("exiting with %d forward pass(es) still running", runtime.busy)
        logging.shutdown()
        os._exit(status)
    return status


async def serve(config: WorkerConfig, runtime: TorchRuntime) -> int:
    """Serve until a stop signal, then drain; returns the exit status."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)

    identity = WorkerIdentity(config.worker_id, config.region)
    metrics = WorkerMetrics(config.model_name, config.model_version)
    dataplane = DataPlane(
        config.model_name,
        config.model_version,
        runtime,
        server_version(),
        policy=batch_policy(config),
        observer=metrics,
    )
    log.info("scheduling: %s", _describe(dataplane.policy))
    health = HealthState(config.model_name)
    await health.set_serving()

    grpc_server = build_grpc_server(
        config.host,
        config.grpc_port,
        InferenceServicer(dataplane, metrics, identity),
        health,
        config.max_message_bytes,
    )
    runner = web.AppRunner(
        build_rest_app(dataplane, metrics, identity, config.max_message_bytes),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=config.shutdown_grace_s,
    )
    await runner.setup()
    try:
        await grpc_server.start()
        site = web.TCPSite(runner, config.host, config.http_port)
        try:
            await site.start()
        except OSError as exc:
            raise OSError(
                f"cannot listen for HTTP on {config.host}:{config.http_port}: {exc}"
            ) from exc
    except BaseException:
        await grpc_server.stop(None)
        await runner.cleanup()
        raise
    log.info(
        "serving model %s version %s from %s: grpc %s:%d, http %s:%d, region %s",
        config.model_name,
        config.model_version,
        config.model_path,
        config.host,
        config.grpc_port,
        config.host,
        config.http_port,
        config.region,
    )

    await stop.wait()
    log.info(
        "stop signal: draining, %d request(s) in flight, grace %.1fs",
        metrics.in_flight,
        config.shutdown_grace_s,
    )
    dataplane.start_draining()
    await health.shutdown()
    await asyncio.gather(grpc_server.stop(config.shutdown_grace_s), runner.cleanup())
    dataplane.close()
    runtime.close()
    log.info("stopped")
    return 0


def batch_policy(config: WorkerConfig) -> BatchPolicy:
    """The scheduling part of the flags."""
    s = config.scheduling
    return BatchPolicy(
        max_batch_size=s.max_batch_size,
        max_batch_delay_s=s.max_batch_delay_ms / 1000.0,
        preferred_batch_sizes=frozenset(s.preferred_batch_sizes),
        priority_levels=s.priority_levels,
        default_priority_level=s.default_priority_level,
        instances=s.instances,
    )


def warmup_batch_sizes(config: WorkerConfig) -> tuple[int, ...]:
    """The row counts the batcher forms, to warm up at start: its largest and preferred batch
    sizes (none when batching is off or the signature cannot be batched)."""
    s = config.scheduling
    if s.max_batch_size <= 1 or batching_blocker(config.signature):
        return ()
    return (s.max_batch_size, *s.preferred_batch_sizes)


def _describe(policy: BatchPolicy) -> str:
    if not policy.queued:
        return f"one request per forward pass, {policy.instances} instance(s)"
    parts = [f"batches up to {policy.max_batch_size} rows"]
    if policy.batching:
        parts.append(f"delay {policy.max_batch_delay_s * 1000:g} ms")
        if policy.preferred_batch_sizes:
            parts.append(f"preferred {sorted(policy.preferred_batch_sizes)}")
    if policy.priority_levels:
        parts.append(
            f"{policy.priority_levels} priority level(s), default "
            f"{policy.default_priority_level or policy.priority_levels}"
        )
    parts.append(f"{policy.instances} instance(s)")
    return ", ".join(parts)


def server_version() -> str:
    try:
        return importlib.metadata.version("meshline")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"
