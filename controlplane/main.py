"""`meshline controlplane`: API, store, reconciler, ADS and agent streams on one gRPC port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from controlplane import confirmed, forwarding
from controlplane.activator import Activator, ActivatorServer, activator_out_of_reach
from controlplane.agents.registry import AgentRegistry, region_spec
from controlplane.agents.service import AgentService
from controlplane.api import add_api_to_server
from controlplane.api.auth_setup import AuthConfig, management_auth
from controlplane.api.key_checks import parse_rfc3339
from controlplane.api.registration import register_region
from controlplane.forwarding import load_or_create_secret
from controlplane.ir.build import activator_endpoint
from controlplane.metrics import MetricsServer
from controlplane.reconcile import Reconciler
from controlplane.rollout import RolloutController
from controlplane.status import LiveStatus
from controlplane.store import Store
from controlplane.store.artifacts import ArtifactStore
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.server import add_ads_to_server
from meshline.bind import LOOPBACK
from meshline.phases import ApiKeyPhase
from meshline.process.lock import AlreadyRunningError, hold_lock
from meshline.v1 import agent_pb2, agent_pb2_grpc
from meshline.v1.resources_pb2 import ApiKey

log = logging.getLogger(__name__)

SERVICE_NAMES = [
    "meshline.v1.ApplyService",
    "meshline.v1.ModelService",
    "meshline.v1.EnvironmentService",
    "meshline.v1.DeploymentService",
    "meshline.v1.RegionService",
    "meshline.v1.RolloutService",
    "meshline.v1.AgentService",
    "envoy.service.discovery.v3.AggregatedDiscoveryService",
]


@dataclass(frozen=True)
class ControlPlaneConfig:
    listen: str
    state_dir: Path
    # IP literal the activator binds and the gateways reach it at (Envoy takes only IP literals
    # in EDS). Loopback by default: it takes requests from anyone who reaches it, so only a
    # mesh with gateways on other hosts exposes it (--activator-host).
    activator_host: str = LOOPBACK
    # host:port of the Prometheus /metrics page (cold starts, replicas, held requests); "" = off.
    metrics_listen: str = ""
    # Management API credentials: an identity provider, resetting the admin token.
    auth: AuthConfig = field(default_factory=AuthConfig)

    @property
    def database(self) -> Path:
        return self.state_dir / "meshline.db"

    @property
    def artifacts(self) -> Path:
        """Content-addressed model artifacts (`sha256/<hex>`), beside the database."""
        return self.state_dir / "artifacts"


async def serve(config: ControlPlaneConfig) -> None:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock = hold_lock(config.state_dir / "controlplane.lock")  # one control plane per store
    except AlreadyRunningError as exc:
        raise SystemExit(f"cannot start the control plane: {exc}") from None
    store = Store.open(config.database)
    artifacts = ArtifactStore(config.artifacts)
    if cleared := artifacts.clear_unfinished_uploads():
        log.info("removed %d unfinished upload(s) from %s", cleared, artifacts.tmp_dir)
    cache = SnapshotCache(epoch=store.epoch)
    registry = AgentRegistry()
    rollouts = RolloutController(store)
    reconciler = Reconciler(
        store,
        registry,
        cache,
        rollouts=rollouts,
        forward_secret=load_or_create_secret(config.state_dir / forwarding.SECRET_FILE),
    )
    rollouts.on_change = reconciler.trigger  # a retry or abort reaches the gateways at once
    status = LiveStatus(cache, registry, lambda: reconciler.state, reconciler.autoscaler.ledger)
    activator = Activator(reconciler.hold_target, reconciler.trigger)
    activator_server = ActivatorServer(activator, config.activator_host)
    await activator_server.start()
    reconciler.activator = activator
    reconciler.activator_endpoint = activator_endpoint(
        activator_server.host, activator_server.grpc_port, activator_server.http_port
    )
    metrics = MetricsServer(reconciler, activator)
    if config.metrics_listen:
        await metrics.start(config.metrics_listen)

    def on_hello(hello: agent_pb2.AgentHello) -> None:
        register_region(store, hello.region, region_spec(hello))
        if warning := activator_out_of_reach(activator_server.host, hello):
            log.warning("%s", warning)

    auth = management_auth(store, config.state_dir, config.auth)
    server = grpc.aio.server(
        interceptors=[auth.guard],  # every management call authenticated, authorized, audited
        options=[
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", 1),
            # A second control plane on the same port must fail, not share it.
            ("grpc.so_reuseport", 0),
        ],
    )

    def key_enforcement(key: ApiKey) -> tuple[list[str], list[str]]:
        status = key.status
        held = reconciler.configs.confirmed_credentials()
        if status.phase != ApiKeyPhase.ACTIVE:
            return confirmed.key_enforcement("", (status.key_id, status.previous_key_id), held)
        previous_over = bool(status.previous_valid_until) and (
            parse_rfc3339(status.previous_valid_until) <= time.time()
        )
        gone = (status.previous_key_id,) if previous_over else ()
        return confirmed.key_enforcement(status.key_id, gone, held)

    add_api_to_server(
        server, store, status, rollouts, artifacts=artifacts, key_enforcement=key_enforcement
    )
    add_ads_to_server(server, cache)
    agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(registry, on_hello), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*SERVICE_NAMES, reflection.SERVICE_NAME, health.SERVICE_NAME], server
    )
    try:
        server.add_insecure_port(config.listen)
    except RuntimeError:
        raise SystemExit(
            f"cannot listen on {config.listen}: the address is in use or invalid "
            "(is another control plane running?)"
        ) from None
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    reconciler.trigger()
    task = asyncio.create_task(reconciler.run(), name="reconciler")
    auth_task = asyncio.create_task(auth.run(), name="oidc-keys")
    log.info(
        "control plane listening on %s (store %s, epoch %d)",
        config.listen,
        config.database,
        store.epoch,
    )
    print(f"controlplane listening on {config.listen}", flush=True)
    if config.metrics_listen:
        print(f"controlplane metrics on http://{metrics.address}/metrics", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("control plane stopping")
    task.cancel()
    auth_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with contextlib.suppress(asyncio.CancelledError):
        await auth_task
    await server.stop(grace=1.0)
    await activator_server.stop()
    await metrics.stop()
    reconciler.configs.close()
    store.close()
    lock.close()
