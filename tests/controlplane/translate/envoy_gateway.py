"""Run the real Envoy on a GatewayIR (IR → translate_gateway → static bootstrap), for tests.

    with running_gateway(ir, log_dir) as gw:
        urllib.request.urlopen(f"http://{gw.address}/v2/health/ready")

No control plane: static_bootstrap inlines RDS, EDS and ECDS. Envoy is stopped on exit (its log
printed when the block fails). Restarting with a new IR is how a test reaches a "later" state.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from controlplane.ir import GatewayIR
from controlplane.translate import translate_gateway
from controlplane.translate.static_bootstrap import static_bootstrap_yaml
from tests.harness.envoy_admin import read_clusters
from tests.harness.processes import (
    VENV_BIN,
    ManagedProcess,
    free_port,
    managed,
    port_open,
    wait_until,
)

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Gateway:
    """A running Envoy: its listener and admin ports."""

    port: int
    admin_port: int
    process: ManagedProcess

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def admin(self) -> str:
        return f"{HOST}:{self.admin_port}"

    def admin_text(self, path: str) -> str:
        """GET an admin page (e.g. `/config_dump`) as text."""
        with urllib.request.urlopen(f"http://{self.admin}{path}", timeout=5) as response:
            return str(response.read().decode())


def every_host_healthy(gw: Gateway) -> bool:
    """Every host of every cluster passed its health check (admin /clusters)."""
    hosts = read_clusters(gw.admin)
    return bool(hosts) and all(s.get("health_flags") == "healthy" for s in hosts.values())


@contextmanager
def running_gateway(
    ir: GatewayIR, log_dir: Path, *, name: str = "envoy", wait_healthy: bool = False
) -> Iterator[Gateway]:
    """Envoy serving `ir` (listening on `ir.listen_port`) until the block ends; with
    `wait_healthy`, only once every host passed its first health check."""
    admin_port = free_port(HOST)
    config = log_dir / f"{name}.yaml"
    config.write_text(static_bootstrap_yaml(translate_gateway(ir), admin_port=admin_port))
    command = [
        str(VENV_BIN / "envoy"),
        "-c",
        str(config),
        "--disable-hot-restart",
        "--log-level",
        "warn",
        "--concurrency",
        "1",
    ]
    with managed(name, command, log_dir) as process:
        gw = Gateway(ir.listen_port, admin_port, process)
        wait_until(lambda: process.alive() and port_open(HOST, gw.port), what=f"{name} listener")
        if wait_healthy:
            wait_until(lambda: process.alive() and every_host_healthy(gw), what=f"{name} hosts")
        yield gw
