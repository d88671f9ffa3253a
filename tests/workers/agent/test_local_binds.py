"""An agent's admin and worker ports stay on loopback, whatever address its gateway advertises.

The gateway's own listener binds `--host` (its address comes later over LDS); Envoy's admin and
the workers bind `--admin-host` / `--worker-host`, loopback unless the user exposes them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.workers.agent.helpers import workload
from workers.agent.config import AgentConfig
from workers.agent.envoy_process import EnvoyGateway, render_bootstrap
from workers.agent.worker_processes import WorkerProcesses

# An address of another host's agent: nothing here binds it (ports are given, not picked).
REMOTE_HOST = "10.77.0.2"
# The control plane's mesh port, on another host (what Join told the agent).
MESH_ADDRESS = "10.77.0.1:7071"


def _config(
    tmp_path: Path, admin_host: str = "127.0.0.1", worker_host: str = "127.0.0.1"
) -> AgentConfig:
    return AgentConfig(
        region="edge",
        controlplane="10.77.0.1:7070",
        state_dir=tmp_path,
        host=REMOTE_HOST,
        gateway_port=8080,
        admin_port=9901,
        standby_workers=0,
        admin_host=admin_host,
        worker_host=worker_host,
    )


def _admin_bind(config: AgentConfig) -> str:
    bootstrap = yaml.safe_load(render_bootstrap(config, "a1", config.admin_port, MESH_ADDRESS))
    address: str = bootstrap["admin"]["address"]["socket_address"]["address"]
    return address


def test_envoy_admin_binds_loopback_while_the_gateway_advertises_its_host(tmp_path: Path) -> None:
    config = _config(tmp_path)
    gateway = EnvoyGateway(config, "a1", MESH_ADDRESS)
    assert _admin_bind(config) == "127.0.0.1"
    assert gateway.admin_address == "127.0.0.1:9901"
    assert gateway.gateway_address == f"{REMOTE_HOST}:8080"
    # Envoy still reaches the control plane's mesh port at its own address (ADS), not loopback.
    bootstrap = yaml.safe_load(render_bootstrap(config, "a1", 9901, MESH_ADDRESS))
    xds = bootstrap["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]
    assert xds["lb_endpoints"][0]["endpoint"]["address"]["socket_address"] == {
        "address": "10.77.0.1",
        "port_value": 7071,
    }


@pytest.mark.parametrize(
    ("admin_host", "reached"),
    [(REMOTE_HOST, f"{REMOTE_HOST}:9901"), ("0.0.0.0", "127.0.0.1:9901")],
)
def test_admin_host_exposes_envoy_admin_when_asked(
    tmp_path: Path, admin_host: str, reached: str
) -> None:
    config = _config(tmp_path, admin_host=admin_host)
    assert _admin_bind(config) == admin_host
    assert EnvoyGateway(config, "a1", MESH_ADDRESS).admin_address == reached


@pytest.mark.parametrize(
    ("worker_host", "advertised"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1")],
)
def test_workers_listen_where_only_this_hosts_envoy_reaches_them(
    tmp_path: Path, worker_host: str, advertised: str
) -> None:
    """What a worker reports is what EDS carries: the region's Envoy on this host dials it."""
    processes = WorkerProcesses(
        _config(tmp_path, worker_host=worker_host), lambda: None, lambda _w: True
    )
    worker = processes.new_worker(workload(tmp_path / "m.pt", "r1"), set())
    report = worker.report(routable=False)
    assert report.grpc_address == f"{advertised}:{worker.grpc_port}"
    assert report.http_address == f"{advertised}:{worker.http_port}"
    assert worker.metrics_url == f"http://{advertised}:{worker.http_port}/metrics"


def test_defaults_keep_every_local_surface_on_loopback(tmp_path: Path) -> None:
    config = AgentConfig(region="eu", controlplane="127.0.0.1:7070", state_dir=tmp_path)
    assert (config.host, config.admin_host, config.worker_host) == ("127.0.0.1",) * 3
