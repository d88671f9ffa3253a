"""`meshline controlplane`: the store, the reconciler, and two gRPC ports: the API (TLS:
management, Join) and the mesh port (mTLS: agent streams, Renew, Envoy's ADS, artifacts)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from controlplane import confirmed
from controlplane.activator import (
    Activator,
    ActivatorServer,
    ActivatorTls,
    activator_out_of_reach,
)
from controlplane.agents.audit import join_record
from controlplane.agents.edge_hello import controlplane_names
from controlplane.agents.hello import hello_refusal
from controlplane.agents.join import JoinEvent, JoinServicer, JoinSettings
from controlplane.agents.mesh_services import AdsGate, MeshArtifacts
from controlplane.agents.peers import MeshPeers, PeerRefusal
from controlplane.agents.registry import AgentRegistry
from controlplane.agents.service import AgentService
from controlplane.api import add_api_to_server
from controlplane.api.auth_setup import AuthConfig, management_auth
from controlplane.api.servicers import ModelServicer
from controlplane.ir.build import activator_endpoint
from controlplane.metrics import MetricsServer
from controlplane.pki import (
    REGION_CERT_LIFETIME,
    CAError,
    UserCAFiles,
    open_ca,
    open_edge_ca,
)
from controlplane.ports import (
    advertised_mesh_address,
    certificate_hosts,
    default_mesh_listen,
)
from controlplane.reconcile import Reconciler
from controlplane.reconcile.identities import DEFAULT_LIFETIME, GatewayIdentities
from controlplane.rollout import RolloutController
from controlplane.server_identity import ServerIdentity, expiry_warning
from controlplane.status import LiveStatus
from controlplane.store import Store
from controlplane.store.artifacts import ArtifactStore
from controlplane.store.audit import append_events
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.server import AdsServer
from meshline.bind import LOOPBACK
from meshline.edge_tls import EDGE_CA_CERT_FILE
from meshline.phases import ApiKeyPhase
from meshline.process.lock import AlreadyRunningError, hold_lock
from meshline.times import parse_rfc3339
from meshline.v1 import agent_pb2, agent_pb2_grpc, api_pb2_grpc
from meshline.v1.resources_pb2 import ApiKey
from meshline.wire import CA_CERT_FILE

log = logging.getLogger(__name__)

SERVICE_NAMES = [
    "meshline.v1.ApplyService",
    "meshline.v1.ModelService",
    "meshline.v1.EnvironmentService",
    "meshline.v1.DeploymentService",
    "meshline.v1.RegionService",
    "meshline.v1.RolloutService",
    "meshline.v1.JoinService",
]
SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # A second control plane on the same port must fail, not share it.
    ("grpc.so_reuseport", 0),
]


@dataclass(frozen=True)
class ControlPlaneConfig:
    listen: str  # the API port (TLS)
    state_dir: Path
    # The mesh port (mTLS); "" = the API's host, its port + 1.
    mesh_listen: str = ""
    # Other names or addresses agents and clients reach this host at: in the certificate,
    # and the first is the host Join tells agents the mesh port is at.
    advertise_hosts: tuple[str, ...] = ()
    # A CA the user brings (else the control plane's own, made in the state dir).
    user_ca: UserCAFiles | None = None
    # The edge CA the user brings to sign the certificates gateways serve clients (else one
    # made in the state dir); never the mesh CA, nor one the mesh trusts.
    user_edge_ca: UserCAFiles | None = None
    # How long an agent's certificate lives; it renews at 2/3.
    agent_cert_ttl: timedelta = REGION_CERT_LIFETIME
    # IP literal the activator binds and the gateways reach it at (Envoy takes only IP literals
    # in EDS). Loopback by default, so a mesh with gateways on other hosts exposes it
    # (--activator-host); it takes only gateways with their mesh certificate (mTLS).
    activator_host: str = LOOPBACK
    # host:port of the Prometheus /metrics page (cold starts, replicas, held requests); "" = off.
    metrics_listen: str = ""
    # Management API credentials: an identity provider, resetting the admin token.
    auth: AuthConfig = field(default_factory=AuthConfig)
    # How long a gateway certificate (the peer path's mTLS) lives; a new one comes at 2/3.
    gateway_cert_ttl: timedelta = DEFAULT_LIFETIME
    # Benchmark only: the peer path between gateways in plain text (no certificates at all).
    peer_plaintext: bool = False

    @property
    def mesh_address(self) -> str:
        """Where the mesh port listens."""
        return self.mesh_listen or default_mesh_listen(self.listen)

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
    try:
        ca = open_ca(config.state_dir, config.user_ca, datetime.now(UTC))
        edge_ca = open_edge_ca(config.state_dir, config.user_edge_ca, ca, datetime.now(UTC))
        hosts = certificate_hosts(config.listen, config.mesh_address, config.advertise_hosts)
        identity = ServerIdentity(ca, hosts)  # the API and mesh ports renew it at 2/3
        own = identity.current
        own_names = controlplane_names(hosts)  # no gateway's edge certificate may carry them
    except (CAError, ValueError) as exc:
        raise SystemExit(f"cannot start the control plane: {exc}") from None
    if warning := expiry_warning(own, datetime.now(UTC)):
        log.warning("%s", warning)
    auth = management_auth(store, config.state_dir, config.auth)
    # every management call authenticated, authorized, audited
    server = grpc.aio.server(interceptors=[auth.guard], options=SERVER_OPTIONS)
    mesh_server = grpc.aio.server(options=SERVER_OPTIONS)
    # Both ports are bound first, before the activator and the metrics page take free ports.
    for where, port_server, credentials in (
        (config.listen, server, identity.credentials()),
        (config.mesh_address, mesh_server, identity.credentials(ca.bundle_pem)),
    ):
        try:
            port_server.add_secure_port(where, credentials)
        except RuntimeError:
            raise SystemExit(
                f"cannot listen on {where}: the address is in use or invalid "
                "(is another control plane running?)"
            ) from None
    if config.peer_plaintext:
        log.warning(
            "the peer path between gateways runs in plain text (benchmark only); gateways get "
            "no mesh certificate, which the activator asks for: deployments scaled to zero do "
            "not wake"
        )
    reconciler = Reconciler(
        store,
        registry,
        cache,
        rollouts=rollouts,
        identities=GatewayIdentities(ca, config.gateway_cert_ttl, edge_ca),
        peer_plaintext=config.peer_plaintext,
    )
    rollouts.on_change = reconciler.trigger  # a retry or abort reaches the gateways at once
    status = LiveStatus(cache, registry, lambda: reconciler.state, reconciler.autoscaler.ledger)
    activator = Activator(reconciler.hold_target, reconciler.trigger)
    activator_server = ActivatorServer(activator, config.activator_host, ActivatorTls(identity, ca))
    await activator_server.start()
    reconciler.activator = activator
    reconciler.activator_endpoint = activator_endpoint(
        activator_server.host, activator_server.grpc_port, activator_server.http_port
    )
    metrics = MetricsServer(reconciler, activator)
    if config.metrics_listen:
        await metrics.start(config.metrics_listen)

    def on_hello(hello: agent_pb2.AgentHello) -> PeerRefusal | None:
        """The region was registered at Join (or applied); the hello's facts are ignored."""
        if refusal := hello_refusal(store, hello, own_names):
            return refusal
        if warning := activator_out_of_reach(activator_server.host, hello):
            log.warning("%s", warning)
        return None

    def on_join(event: JoinEvent) -> None:
        try:
            append_events(store, [join_record(event, time.time())])
        except Exception:  # the join is done; say so loudly, do not fail it
            log.exception("cannot write the audit event of region %s's join", event.region)

    peers = MeshPeers(ca, store)
    ads_gate = AdsGate(AdsServer(cache), peers)

    def on_replaced(region: str, serial: str) -> None:
        why = f"region '{region}' joined again: certificate {serial} is its certificate now"
        ads_gate.end_streams(region, serial, why)

    mesh_address = advertised_mesh_address(config.mesh_address, config.advertise_hosts)
    joins = JoinServicer(
        store,
        ca,
        JoinSettings(mesh_address, config.agent_cert_ttl),
        registry,
        on_join=on_join,
        on_replaced=on_replaced,
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
    # Join on the API port (the join token is the credential); Renew there is refused for
    # want of a client certificate, and is served on the mesh port.
    agent_pb2_grpc.add_JoinServiceServicer_to_server(joins, server)
    agent_pb2_grpc.add_JoinServiceServicer_to_server(joins, mesh_server)
    agent_pb2_grpc.add_AgentServiceServicer_to_server(
        AgentService(registry, on_hello, peers), mesh_server
    )
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(ads_gate, mesh_server)
    api_pb2_grpc.add_ModelServiceServicer_to_server(
        MeshArtifacts(ModelServicer(store, artifacts), peers), mesh_server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*SERVICE_NAMES, reflection.SERVICE_NAME, health.SERVICE_NAME], server
    )
    await mesh_server.start()
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    reconciler.trigger()
    task = asyncio.create_task(reconciler.run(), name="reconciler")
    auth_task = asyncio.create_task(auth.run(), name="oidc-keys")
    log.info(
        "control plane listening on %s (API, TLS) and %s (mesh, mTLS; agents told %s); "
        "store %s, epoch %d; certificate %s for %s",
        config.listen,
        config.mesh_address,
        mesh_address,
        config.database,
        store.epoch,
        own.facts.serial,
        ", ".join(hosts),
    )
    print(
        f"controlplane listening on {config.listen} (mesh port {config.mesh_address}; "
        f"CA {config.state_dir / CA_CERT_FILE}; edge CA {config.state_dir / EDGE_CA_CERT_FILE})",
        flush=True,
    )
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
    await mesh_server.stop(grace=1.0)
    await activator_server.stop()
    await metrics.stop()
    reconciler.configs.close()
    store.close()
    lock.close()
