"""Agent settings, from the command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AgentConfig:
    region: str
    controlplane: str  # host:port of the control plane's gRPC server (API, ADS, agent stream)
    state_dir: Path
    # What the region registers as when no Region was applied for it.
    country: str = ""  # ISO 3166-1 alpha-2
    continent: str = ""  # AF, AN, AS, EU, NA, OC, SA
    cpu_flavors: tuple[str, ...] = ()
    gpu_flavors: tuple[str, ...] = ()
    max_replicas: int = 0  # over all deployments; 0 = unlimited
    # Address the gateway and workers bind and advertise. One machine: loopback.
    host: str = "127.0.0.1"
    gateway_port: int = 0  # 0 = pick a free port
    admin_port: int = 0
    envoy_binary: str = "envoy"
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

    @property
    def controlplane_host(self) -> str:
        return self.controlplane.rsplit(":", 1)[0]

    @property
    def controlplane_port(self) -> int:
        return int(self.controlplane.rsplit(":", 1)[1])
