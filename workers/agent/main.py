"""`meshline agent`: one per region; joins the mesh (or starts from its stored certificate),
then runs Envoy and workers until told to stop, renewing its certificate as it goes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path

from meshline.edge_tls import EdgeTlsMode
from meshline.v1 import agent_pb2
from workers.agent.config import AgentConfig
from workers.agent.edge_probe import EdgeCertificateWatch, expires_text
from workers.agent.edge_tls import EdgeTlsError, check_user_files, hello_edge_tls, write_sds_file
from workers.agent.enrollment import EnrollmentRefusedError, start_identity
from workers.agent.envoy_process import EnvoyGateway
from workers.agent.session import ControlPlaneSession
from workers.agent.supervisor import Supervisor

log = logging.getLogger(__name__)


async def run_agent(config: AgentConfig, join_token: str = "") -> None:
    """`join_token`: needed only while the state dir holds no valid certificate of the
    region. A refusal ends the agent (SystemExit with the control plane's reason): nothing
    is started before the region has its certificate, so a refused agent's Envoy never asks
    for configuration."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    edge_sds_file = prepare_edge_tls(config)
    try:
        identity = await start_identity(
            config.state_dir, config.region, config.controlplane, config.ca_file, join_token
        )
    except EnrollmentRefusedError as exc:
        raise SystemExit(f"agent for region {config.region}: {exc}") from None
    agent_id = uuid.uuid4().hex[:12]
    gateway = EnvoyGateway(config, agent_id, identity.mesh_address)
    session: ControlPlaneSession | None = None
    supervisor = Supervisor(
        config,
        on_change=lambda: session.report_changed() if session else None,
        mesh=identity,
    )
    hello = agent_pb2.AgentHello(
        region=config.region,
        gateway_address=gateway.gateway_address,
        admin_address=gateway.admin_address,
        peer_address=gateway.peer_address,
        agent_id=agent_id,
        edge_tls=hello_edge_tls(config.edge_tls, edge_sds_file),
    )
    session = ControlPlaneSession(hello, supervisor, identity, config.report_interval_s)
    supervisor.connected = session.connected.is_set
    supervisor.gateway_view = gateway.view

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    failure: BaseException | None = None
    await gateway.start()
    tasks = [
        asyncio.create_task(supervisor.run(), name="supervisor"),
        asyncio.create_task(session.run(), name="session"),
        asyncio.create_task(identity.run(), name="certificate-renewal"),
    ]
    if config.edge_tls is not None:
        watch = EdgeCertificateWatch(
            config.gateway_reach_host,
            gateway.gateway_port,
            lambda facts: supervisor.edge_certificate_served(expires_text(facts)),
        )
        tasks.append(asyncio.create_task(watch.run(), name="edge-certificate"))
    edge = config.edge_tls.mode.value if config.edge_tls is not None else "off"
    print(
        f"agent region={config.region} gateway={gateway.gateway_address} "
        f"peer={gateway.peer_address} admin={gateway.admin_address} edge-tls={edge}",
        flush=True,
    )
    stopper = asyncio.create_task(stop.wait(), name="stop-signal")
    try:
        await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                error = task.exception()
                log.error("agent stopping: %s", error)
                failure = error
    finally:
        stopper.cancel()
        log.info("agent stopping: workers, then envoy")
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await supervisor.stop()
        await gateway.stop()
    if failure is not None:
        raise SystemExit(f"agent for region {config.region}: {failure}")


def prepare_edge_tls(config: AgentConfig) -> Path | None:
    """Before anything starts: the user's certificate files must be servable now (else the
    agent ends with what is wrong with which file), and Envoy gets the SDS file naming them.
    Its path (None unless the mode is "files")."""
    settings = config.edge_tls
    if settings is None or settings.mode is not EdgeTlsMode.FILES:
        return None
    assert settings.cert_file is not None and settings.key_file is not None
    try:
        facts = check_user_files(settings.cert_file, settings.key_file, datetime.now(UTC))
    except EdgeTlsError as exc:
        raise SystemExit(f"agent for region {config.region}: {exc}") from None
    path = write_sds_file(config.state_dir, settings)
    log.info(
        "edge TLS from %s (certificate %s, expires %s) through %s",
        settings.cert_file,
        facts.serial,
        facts.not_after.isoformat(),
        path,
    )
    return path
