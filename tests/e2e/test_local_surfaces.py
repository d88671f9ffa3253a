"""Admin surfaces stay local: on a second host only the gateway's listeners face the network.

The region's agent runs in a network namespace (its own "host", reached at 10.77.N.2) with
`--host 10.77.N.2`, the control plane on this host at 10.77.N.1. What listens inside is read
with `ss`, and this host tries each port the way anyone on the network could.
"""

from __future__ import annotations

import errno
import json
import re
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.e2e.conftest import deployment_yaml, local_torch
from tests.harness.load import rest_infer
from tests.harness.mesh import Mesh, running_mesh
from tests.harness.netns import (
    ListeningSocket,
    Netns,
    listening_sockets,
    network_namespace,
    parse_listening,
)

REGION = "edge"
DEPLOYMENT = "surfaces"
_ACTIVATOR_LOG = re.compile(r"activator on (\S+): gRPC (\d+), REST (\d+)")
# Envoy's upstream hosts as the region's Envoy sees them, read inside the namespace (its admin
# answers on that host's loopback only).
_READ_UPSTREAMS = """
import json, sys
from tests.harness.envoy_admin import read_clusters
print(json.dumps(sorted({a for (c, a) in read_clusters(sys.argv[1]) if c != "meshline_xds"})))
"""


@dataclass
class Edge:
    mesh: Mesh
    ns: Netns


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with (
        network_namespace() as ns,
        running_mesh(
            tmp_path_factory.mktemp("edge"),
            regions=(REGION,),
            region_facts={REGION: {"netns": ns}},
            controlplane_host=ns.host_address,
        ) as mesh,
    ):
        yield Edge(mesh, ns)


def _refused(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        return s.connect_ex((host, port)) == errno.ECONNREFUSED


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _exposed(sockets: list[ListeningSocket]) -> set[tuple[str, int]]:
    return {(s.host, s.port) for s in sockets if not s.loopback}


def test_ss_lines_are_parsed() -> None:
    text = (
        'LISTEN 0 4096 127.0.0.1:9901 0.0.0.0:* users:(("envoy",pid=41,fd=20))\n'
        "LISTEN 0 128 10.77.3.2:8080 0.0.0.0:* "
        'users:(("envoy",pid=41,fd=30),("envoy",pid=42,fd=30))\n'
        "LISTEN 0 5 [::1]:7000 [::]:*\n"
        "LISTEN 0 5 *:7001 *:*\n"
        "LISTEN 0 5 [::ffff:127.0.0.1]:7002 *:*\n"
        "LISTEN 0 5 127.0.0.53%lo:53 0.0.0.0:*\n"
    )
    assert parse_listening(text) == [
        ListeningSocket("127.0.0.1", 9901, frozenset({41})),
        ListeningSocket("10.77.3.2", 8080, frozenset({41, 42})),
        ListeningSocket("::1", 7000),
        ListeningSocket("*", 7001),
        ListeningSocket("127.0.0.1", 7002),
        ListeningSocket("127.0.0.53", 53),
    ]
    loopback = [s.loopback for s in parse_listening(text)]
    assert loopback == [True, False, True, False, True, True]


def test_only_the_gateway_listens_on_the_hosts_address(edge: Edge, models: dict[str, Path]) -> None:
    mesh, ns = edge.mesh, edge.ns
    mesh.apply(deployment_yaml(DEPLOYMENT, {"v1": models["v1"]}, "v1", [REGION]))
    mesh.wait_ready(DEPLOYMENT)
    status = mesh.region(REGION).status
    gateway_port, admin_port = _port(status.gateway_address), _port(status.admin_address)
    peer_port = _port(status.peer_address)
    assert status.gateway_address == f"{ns.inner_address}:{gateway_port}"
    assert status.peer_address == f"{ns.inner_address}:{peer_port}"
    assert status.admin_address == f"127.0.0.1:{admin_port}"

    # Inside the region's host: only the gateway (its inference listener, and its mTLS listener
    # for other gateways' forwarded requests) listens on its address, all else on loopback.
    sockets = ns.listening()
    gateway_listeners = {(ns.inner_address, gateway_port), (ns.inner_address, peer_port)}
    assert _exposed(sockets) == gateway_listeners, sockets
    loopback_ports = {s.port for s in sockets if s.loopback}
    assert admin_port in loopback_ports
    worker_pids = set(mesh.worker_pids(REGION, DEPLOYMENT))
    worker_sockets = [s for s in sockets if s.pids & worker_pids]
    # The Torch worker's gRPC and HTTP ports (its metrics and health pages are on HTTP).
    assert len({s.port for s in worker_sockets}) >= 2, sockets
    assert all(s.host == "127.0.0.1" for s in worker_sockets), worker_sockets

    # The region's Envoy reaches its workers on loopback (what EDS carries).
    upstreams = json.loads(
        ns.run([sys.executable, "-c", _READ_UPSTREAMS, f"127.0.0.1:{admin_port}"]).stdout
    )
    assert upstreams, "the region's Envoy lists no worker"
    assert {u.rsplit(":", 1)[0] for u in upstreams} == {"127.0.0.1"}, upstreams
    assert {_port(u) for u in upstreams} <= {s.port for s in worker_sockets}

    # From this host, as from anyone on the network: admin and workers refuse, the gateway serves.
    assert _refused(ns.inner_address, admin_port)
    for port in {s.port for s in worker_sockets}:
        assert _refused(ns.inner_address, port), port
    batch = np.random.default_rng(3).standard_normal((2, 784)).astype(np.float32)
    expected = local_torch(models["v1"], torch.from_numpy(batch)).numpy()
    answer = rest_infer(f"{ns.inner_address}:{gateway_port}", DEPLOYMENT, batch)
    np.testing.assert_allclose(answer, expected, rtol=1e-6, atol=1e-6)


def test_the_activator_listens_on_loopback_by_default(edge: Edge) -> None:
    mesh = edge.mesh
    # Logged before its API answered, which the mesh waited for.
    found = _ACTIVATOR_LOG.search(mesh.controlplane.log())
    assert found is not None
    host, grpc_port, http_port = found.group(1), int(found.group(2)), int(found.group(3))
    assert host == "127.0.0.1"
    own = [s for s in listening_sockets() if mesh.controlplane.pid in s.pids]
    by_port = {s.port: s.host for s in own}
    assert by_port.get(grpc_port) == "127.0.0.1" and by_port.get(http_port) == "127.0.0.1", own
    # Nothing of the control plane faces the network but its API port and its mTLS mesh port
    # (agents, ADS); metrics: the harness's explicit 127.0.0.1.
    faces = {
        (edge.ns.host_address, _port(mesh.address)),
        (edge.ns.host_address, _port(mesh.mesh_address)),
    }
    assert _exposed(own) == faces, own
    # It names the gateway it cannot serve and the flag that would.
    assert f"region {REGION}'s gateway listens on {edge.ns.inner_address}" in (
        mesh.controlplane.log()
    )
