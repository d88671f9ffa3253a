"""The edge TLS an agent's hello asks for: refused, naming the field, when it cannot be
configured (the agent stream is then refused with INVALID_ARGUMENT before anything is set up)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from controlplane.agents.edge_hello import MAX_EDGE_NAMES, edge_tls_problem
from controlplane.agents.hello import hello_refusal
from controlplane.store import Store
from meshline.v1 import agent_pb2

EdgeTls = agent_pb2.EdgeTls


@pytest.mark.parametrize(
    "edge",
    [
        EdgeTls(),
        EdgeTls(mode="files", sds_path="/var/lib/meshline/eu/edge/edge-sds.yaml"),
        EdgeTls(mode="mesh-ca", names=["10.0.0.2", "gw.example.com"]),
        EdgeTls(mode="mesh-ca", names=["0.0.0.0", "gw.example.com"]),
    ],
)
def test_what_can_be_configured(edge: agent_pb2.EdgeTls) -> None:
    assert edge_tls_problem(edge) is None


@pytest.mark.parametrize(
    ("edge", "message"),
    [
        (EdgeTls(mode="acme"), "edge_tls.mode: edge TLS mode 'acme' is not one of"),
        (EdgeTls(names=["10.0.0.2"]), "edge_tls: sds_path and names need a mode"),
        (EdgeTls(mode="files"), "edge_tls.sds_path '': mode 'files' needs the absolute path"),
        (EdgeTls(mode="files", sds_path="edge-sds.yaml"), "needs the absolute path"),
        (EdgeTls(mode="mesh-ca"), "edge_tls.names: mode 'mesh-ca' needs a DNS name or IP"),
        (EdgeTls(mode="mesh-ca", names=["::"]), "needs a DNS name or IP"),
        (
            EdgeTls(mode="mesh-ca", names=["x y"]),
            "edge_tls.names: 'x y' is neither an IP address nor a DNS name",
        ),
        (
            EdgeTls(mode="mesh-ca", names=[f"n{i}.example" for i in range(MAX_EDGE_NAMES + 1)]),
            f"edge_tls.names: {MAX_EDGE_NAMES + 1} names, at most {MAX_EDGE_NAMES}",
        ),
    ],
)
def test_what_cannot_is_named(edge: agent_pb2.EdgeTls, message: str) -> None:
    problem = edge_tls_problem(edge)
    assert problem is not None and message in problem


def test_the_hello_check_refuses_it(tmp_path: Path) -> None:
    with Store.open(tmp_path / "meshline.db") as store:
        hello = agent_pb2.AgentHello(region="eu", edge_tls=EdgeTls(mode="acme"))
        refusal = hello_refusal(store, hello)
    assert refusal is not None
    assert refusal.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "edge_tls.mode" in refusal.message
