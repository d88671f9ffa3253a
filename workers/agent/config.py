"""Agent settings, from the command line."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from meshline.bind import LOOPBACK, reachable_host
from workers.agent.edge_tls import EdgeTlsSettings


class XdsProtocol(enum.Enum):
    """How the region's Envoy fetches its configuration over ADS (docs/architecture.md, xDS:
    which to pick)."""

    SOTW = "sotw"  # state of the world: every CDS/LDS update carries the whole set
    DELTA = "delta"  # incremental: only what changed, resource by resource

    @property
    def api_type(self) -> str:
        """The bootstrap's ads_config api_type."""
        return "DELTA_GRPC" if self is XdsProtocol.DELTA else "GRPC"


@dataclass(frozen=True)
class AgentConfig:
    region: str
    # host:port of the control plane's API port (TLS), where the agent joins; the mesh port
    # (agent stream, ADS, renewals) is what Join answers.
    controlplane: str
    state_dir: Path
    # The mesh CA to trust when joining (the control plane's ca.crt); after the join, the CA
    # stored in the state dir. The region's facts (country, flavors, ...) come from its join
    # token or an applied Region, never from the agent.
    ca_file: Path | None = None
    # Address the gateway's inference listener binds and advertises (other regions' gateways
    # and clients reach it there). One machine: loopback.
    host: str = LOOPBACK
    gateway_port: int = 0  # 0 = pick a free port
    # The peer listener, on `host` too: other regions' gateways forward requests there (mTLS
    # with the mesh certificates the control plane gives Envoy). 0 = pick a free port.
    peer_port: int = 0
    # TLS on the inference listener, for clients (None: plain text): a certificate from the
    # mesh CA, or the user's own files.
    edge_tls: EdgeTlsSettings | None = None
    # Envoy's admin interface (config_dump, /quitquitquit): only the agent reads it.
    admin_host: str = LOOPBACK
    admin_port: int = 0
    # Workers' gRPC, HTTP and metrics ports: only this region's Envoy, on this host, reaches them.
    worker_host: str = LOOPBACK
    envoy_binary: str = "envoy"
    xds_protocol: XdsProtocol = XdsProtocol.SOTW
    envoy_log_level: str = "warn"
    # Envoy worker threads. The gateway needs a small fraction of the CPU the Python workers
    # need; on small machines extra Envoy threads only steal cores from the models.
    envoy_concurrency: int = 0  # 0 = max(1, CPUs // 4)
    health_interval_s: float = 0.5
    report_interval_s: float = 5.0
    # Upper bound on how long a replaced worker waits for the control plane to
    # confirm the gateway stopped routing to it (only hit when it is unreachable).
    max_drain_s: float = 60.0
    # Torch interpreters kept with their imports done, so a worker start (a cold start above
    # all) only loads the model; each costs memory, no CPU, while it waits. 0 = none.
    standby_workers: int = 1
    # Models (of `resources.packing: shared` deployments) one shared worker process holds at
    # most: more processes cost their interpreters' memory; fewer put more models in reach of
    # one crash and one GIL.
    models_per_shared_worker: int = 50

    @property
    def admin_reach_host(self) -> str:
        """Where the agent (and `meshline get regions`) reaches Envoy's admin on this host."""
        return reachable_host(self.admin_host)

    @property
    def gateway_reach_host(self) -> str:
        """Where the agent reaches its gateway's inference listener on this host."""
        return reachable_host(self.host)

    @property
    def worker_reach_host(self) -> str:
        """Where this host's Envoy and agent reach the workers; what EDS carries."""
        return reachable_host(self.worker_host)
