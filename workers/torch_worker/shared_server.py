"""Assemble and run a shared worker: no model at start, gRPC and REST on one asyncio loop, and
the model repository extension through which its agent loads and unloads models.

The inference ports (--grpc-port, --http-port) are where the region's gateway routes clients:
they serve the OIP API and /metrics, and refuse repository calls. The control port
(--control-port, gRPC; --control-http-port, REST, optional) serves the same API plus the
repository extension, for the agent alone. On every port a request the gateway authorized for
one deployment reaches that deployment's model only.

Listening means ready to be told what to load. On SIGTERM/SIGINT: health goes NOT_SERVING, no
new request or load is admitted, requests in flight get `--shutdown-grace-s` to finish, and
run() returns 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

import grpc
from aiohttp import web

from workers.torch_worker.activity import ActivityLog
from workers.torch_worker.config import SharedWorkerConfig
from workers.torch_worker.deployment_scope import deployment_scope_middleware
from workers.torch_worker.grpc_adapter import build_grpc_server
from workers.torch_worker.grpc_repository import SharedInferenceServicer
from workers.torch_worker.health import HealthState
from workers.torch_worker.identity import WorkerIdentity
from workers.torch_worker.main import STOP_SIGNALS
from workers.torch_worker.metrics import SharedMetrics
from workers.torch_worker.repository import ModelRepository, RepositorySettings
from workers.torch_worker.rest_adapter import build_rest_app
from workers.torch_worker.rest_repository import add_repository_routes
from workers.torch_worker.server import server_version

log = logging.getLogger("workers.torch_worker")


def run(config: SharedWorkerConfig, stop_requested: Callable[[], bool] = lambda: False) -> int:
    """Serve until a stop signal, drain; the exit status. Raises OSError (a port is taken)."""
    if stop_requested():
        log.info("stopped by a signal while starting")
        return 0
    busy: list[int] = []
    status = asyncio.run(serve(config, busy))
    if busy and busy[0]:
        # A forward pass or a load outlived the grace period; its thread cannot be interrupted and
        # would block interpreter exit, so leave now.
        log.warning("exiting with %d forward pass(es) or load(s) still running", busy[0])
        logging.shutdown()
        os._exit(status)
    return status


def settings(config: SharedWorkerConfig) -> RepositorySettings:
    return RepositorySettings(
        server_version=server_version(),
        torch_threads=config.torch_threads,
        instances=config.instances,
        inline_budget_s=config.inline_max_ms / 1000.0,
        warmup=config.warmup,
        memory_budget_bytes=config.memory_budget_bytes,
        room_wait_s=config.room_wait_s,
    )


async def serve(config: SharedWorkerConfig, busy: list[int]) -> int:
    """Serve until a stop signal, then drain; `busy` gets the forward passes still running."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)

    identity = WorkerIdentity(config.worker_id, config.region)
    metrics = SharedMetrics()
    health = HealthState()
    repository = ModelRepository(
        settings(config), metrics, health, ActivityLog(config.activity_file)
    )
    await health.set_serving()

    def grpc_server(port: int, control: bool) -> grpc.aio.Server:
        servicer = SharedInferenceServicer(repository, metrics, identity, control=control)
        host = config.control_host if control else config.host
        return build_grpc_server(host, port, servicer, health, config.max_message_bytes)

    def rest_runner(control: bool) -> web.AppRunner:
        app = build_rest_app(
            repository,
            metrics,
            identity,
            config.max_message_bytes,
            middlewares=[deployment_scope_middleware],
        )
        if control:
            add_repository_routes(app, repository)
        return web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=config.shutdown_grace_s
        )

    grpc_servers = [grpc_server(config.grpc_port, False), grpc_server(config.control_port, True)]
    sites = [(rest_runner(False), config.host, config.http_port)]
    if config.control_http_port is not None:
        sites.append((rest_runner(True), config.control_host, config.control_http_port))
    for runner, _, _ in sites:
        await runner.setup()
    try:
        for server in grpc_servers:
            await server.start()
        for runner, host, port in sites:
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as exc:
                raise OSError(f"cannot listen for HTTP on {host}:{port}: {exc}") from exc
    except BaseException:
        await asyncio.gather(*(server.stop(None) for server in grpc_servers))
        await asyncio.gather(*(runner.cleanup() for runner, _, _ in sites))
        raise
    control_http = (
        f", http {config.control_host}:{config.control_http_port}"
        if config.control_http_port
        else ""
    )
    log.info(
        "shared worker serving: grpc %s:%d, http %s:%d, control (model repository) grpc %s:%d%s, "
        "region %s, memory budget %s; batching is off (each model runs one request per forward "
        "pass)",
        config.host,
        config.grpc_port,
        config.host,
        config.http_port,
        config.control_host,
        config.control_port,
        control_http,
        config.region,
        config.memory_budget_bytes or "none",
    )

    await stop.wait()
    log.info("stop signal: draining, grace %.1fs", config.shutdown_grace_s)
    repository.start_draining()
    await health.shutdown()
    await asyncio.gather(
        *(server.stop(config.shutdown_grace_s) for server in grpc_servers),
        *(runner.cleanup() for runner, _, _ in sites),
    )
    repository.close()
    busy.append(repository.busy)
    log.info("stopped")
    return 0
