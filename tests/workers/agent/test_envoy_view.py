"""The agent's reading of Envoy's admin `/clusters`: routable hosts and requests in flight.

The parser is checked on text as Envoy writes it, then against a real Envoy with requests held
in flight to a backend that never answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.harness.processes import ManagedProcess, free_port
from tests.workers.agent.helpers import REMOTE_HOSTNAMES
from workers.agent.config import AgentConfig
from workers.agent.envoy_process import EnvoyGateway, envoy_binary, parse_clusters


def _host_lines(
    cluster: str, host: str, rq_active: int, flags: str = "healthy", hostname: str = ""
) -> str:
    return f"""\
{cluster}::{host}::cx_active::1
{cluster}::{host}::cx_connect_fail::0
{cluster}::{host}::rq_active::{rq_active}
{cluster}::{host}::rq_pending_active::0
{cluster}::{host}::rq_total::17
{cluster}::{host}::hostname::{hostname}
{cluster}::{host}::health_flags::{flags}
{cluster}::{host}::weight::1
{cluster}::{host}::region::
{cluster}::{host}::priority::0
{cluster}::{host}::success_rate::-1
"""


def _cluster_lines(cluster: str) -> str:
    return f"""\
{cluster}::observability_name::{cluster}
{cluster}::default_priority::max_connections::1024
{cluster}::default_priority::max_requests::1024
{cluster}::high_priority::max_retries::3
{cluster}::outlier::success_rate_average::-1
{cluster}::added_via_api::true
{cluster}::eds_service_name::{cluster}
"""


def test_rq_active_is_summed_over_every_cluster_a_host_is_in() -> None:
    grpc_a, http_a, grpc_b = "10.0.0.1:9000", "10.0.0.1:9001", "10.0.0.2:9000"
    text = "".join(
        [
            _cluster_lines("dep.env.grpc"),
            _host_lines("dep.env.grpc", grpc_a, 3),
            _host_lines("dep.env.grpc", grpc_b, 1, flags="/failed_active_hc"),
            _cluster_lines("dep.env~local.grpc"),
            _host_lines("dep.env~local.grpc", grpc_a, 2),
            _cluster_lines("dep.env@v2~local.grpc"),
            _host_lines("dep.env@v2~local.grpc", grpc_b, 4, flags="/pending_active_hc"),
            _cluster_lines("dep.env@v2~local.http"),
            _host_lines("dep.env@v2~local.http", http_a, 5),
            _host_lines("dep.env@v2~local.http", "[::1]:9002", 6),
            "admin::observability_name::admin\n",
            "garbage line without separators\n",
            "dep.env.grpc::10.0.0.3:9000::rq_active::not-a-number\n",
            "",
        ]
    )
    view = parse_clusters(text)
    assert view.inflight == {grpc_a: 5, grpc_b: 5, http_a: 5, "[::1]:9002": 6}
    # A host counts as routable when healthy in any cluster; a flag means Envoy skips it.
    assert view.routable == {grpc_a, http_a, "[::1]:9002"}
    assert view.inflight_of(grpc_a, http_a) == 10
    assert view.inflight_of("10.9.9.9:1") == 0


def test_hostnames_say_which_hosts_are_outside_the_region() -> None:
    text = "".join(
        [
            _host_lines("d.p.grpc", "10.0.0.1:9000", 0, hostname="eu-d-1a2b3c"),
            _host_lines("d.p.grpc", "10.0.0.2:8080", 0, hostname="gateway.us"),
            _host_lines("d.p.grpc", "10.0.0.3:7000", 0, hostname="activator"),
        ]
    )
    view = parse_clusters(text)
    assert view.hostnames["10.0.0.2:8080"] == "gateway.us"
    leaving = [a for a in ("10.0.0.1:9000", "10.0.0.2:8080", "10.0.0.3:7000", "10.9.9.9:1")]
    assert [view.leaves_region(a, REMOTE_HOSTNAMES) for a in leaving] == [
        False,
        True,
        True,
        False,
    ]


def test_the_clusters_the_control_plane_added_are_known_by_name_as_envoy_lists_them() -> None:
    text = "".join(
        [
            _cluster_lines("d.p.grpc"),
            _cluster_lines("odd:name~x"),
            "meshline_xds::observability_name::meshline_xds\n",
            "meshline_xds::added_via_api::false\n",
        ]
    )
    assert parse_clusters(text).dynamic_clusters == {"d.p.grpc", "odd:name~x"}


def test_unhealthy_everywhere_is_not_routable() -> None:
    view = parse_clusters(
        _host_lines("a.b~local.grpc", "127.0.0.1:1", 0, flags="/failed_active_hc/failed_eds_health")
        + _host_lines("a.b.grpc", "127.0.0.1:1", 0, flags="/failed_outlier_check")
    )
    assert view.routable == frozenset()
    assert view.inflight == {"127.0.0.1:1": 0}


# -- against a real Envoy -----------------------------------------------------------------

HCM = (
    "type.googleapis.com/envoy.extensions.filters.network."
    "http_connection_manager.v3.HttpConnectionManager"
)
BOOTSTRAP = """\
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:
  - name: gateway
    address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {hcm}
          stat_prefix: gateway
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: /main}}
                route: {{cluster: "dep.env.http", timeout: 60s}}
              - match: {{prefix: /leg}}
                route: {{cluster: "dep.env@v2~local.http", timeout: 60s}}
  clusters:
  - name: "dep.env.http"
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: "dep.env.http"
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {backend}}}}}}}
  - name: "dep.env@v2~local.http"
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: "dep.env@v2~local.http"
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {backend}}}}}}}
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {unhealthy}}}}}}}
          health_status: UNHEALTHY
"""


@pytest.fixture
async def silent_backend() -> AsyncIterator[int]:
    """Accepts requests and never answers them: they stay in flight."""
    connections: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await reader.read()  # until Envoy closes the connection

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_real_envoy_reports_requests_in_flight(tmp_path: Path, silent_backend: int) -> None:
    admin, listen, unhealthy = free_port(), free_port(), free_port()
    bootstrap = tmp_path / "envoy.yaml"
    bootstrap.write_text(
        BOOTSTRAP.format(
            hcm=HCM, admin=admin, listen=listen, backend=silent_backend, unhealthy=unhealthy
        )
    )
    config = AgentConfig(
        region="t", controlplane="127.0.0.1:1", state_dir=tmp_path, admin_port=admin
    )
    gateway = EnvoyGateway(config, "test", "127.0.0.1:1")
    envoy = ManagedProcess(
        "envoy",
        [envoy_binary("envoy"), "-c", str(bootstrap), "--disable-hot-restart", "-l", "warn"],
        tmp_path,
    )
    backend = f"127.0.0.1:{silent_backend}"
    try:
        deadline = time.monotonic() + 30
        while (view := await gateway.view()) is None or backend not in view.routable:
            assert envoy.alive(), envoy.log()
            assert time.monotonic() < deadline, "envoy's admin API never showed the backend"
            await asyncio.sleep(0.05)
        assert view.inflight.get(backend) == 0
        assert f"127.0.0.1:{unhealthy}" not in view.routable

        async with aiohttp.ClientSession() as http:

            async def request(path: str) -> None:
                async with http.get(f"http://127.0.0.1:{listen}{path}") as reply:
                    await reply.read()

            held = [asyncio.create_task(request(path)) for path in ("/main", "/main", "/leg")]
            try:
                # Two requests through one cluster, one through the other: one host, 3 in flight.
                deadline = time.monotonic() + 10
                while (view := await gateway.view()) is None or view.inflight.get(backend) != 3:
                    assert time.monotonic() < deadline, f"in flight: {view}"
                    await asyncio.sleep(0.05)
            finally:
                for task in held:
                    task.cancel()
                await asyncio.gather(*held, return_exceptions=True)
    finally:
        envoy.stop()
    assert await gateway.view() is None  # admin gone: unknown, not "nothing routable"
