"""The edge TLS an agent's hello asks for: refused, naming the field, when it cannot be
configured (the agent stream is then refused with INVALID_ARGUMENT before anything is set up),
or when it names the control plane (PERMISSION_DENIED: no gateway's certificate may)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from controlplane.agents.edge_hello import (
    MAX_EDGE_NAMES,
    claimed_controlplane_names,
    controlplane_names,
    edge_tls_problem,
)
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


@pytest.mark.parametrize(
    ("hosts", "names"),
    [
        # `meshline up`: everything on loopback, which reaches only the client's own host.
        (["127.0.0.1", "127.0.0.1"], set()),
        (["0.0.0.0", "::"], set()),  # unspecified: names nothing
        (["0.0.0.0", "10.0.0.1", "CP.Example.com."], {"10.0.0.1", "cp.example.com"}),
        (["[::ffff:10.0.0.1]", "localhost", "::1", "api.localhost"], {"10.0.0.1"}),
        (["[2001:db8::1]", "127.0.0.2"], {"2001:db8::1"}),
    ],
)
def test_the_control_planes_names(hosts: list[str], names: set[str]) -> None:
    assert controlplane_names(hosts) == names


RESERVED = controlplane_names(["0.0.0.0", "10.0.0.1", "cp.example.com", "127.0.0.1"])


@pytest.mark.parametrize(
    ("edge", "claimed"),
    [
        (EdgeTls(mode="mesh-ca", names=["10.0.0.2", "gw.example.com"]), None),
        (EdgeTls(mode="mesh-ca", names=["127.0.0.1", "localhost"]), None),  # loopback
        (EdgeTls(mode="mesh-ca", names=["10.0.0.2", "CP.example.com"]), "cp.example.com is a"),
        (EdgeTls(mode="mesh-ca", names=["::ffff:10.0.0.1"]), "::ffff:a00:1 is a"),
        (EdgeTls(mode="mesh-ca", names=["10.0.0.1", "cp.example.com"]), "10.0.0.1, cp.exa"),
        # Not certified by the control plane: nothing to refuse here.
        (EdgeTls(mode="files", sds_path="/x/edge-sds.yaml"), None),
        (EdgeTls(), None),
    ],
)
def test_names_of_the_control_plane_are_refused(
    edge: agent_pb2.EdgeTls, claimed: str | None
) -> None:
    problem = claimed_controlplane_names(edge, RESERVED)
    if claimed is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(f"edge_tls.names: {claimed}")
        assert "of the control plane, which no gateway's certificate may carry" in problem


def test_the_hello_check_refuses_a_name_of_the_control_plane(tmp_path: Path) -> None:
    hello = agent_pb2.AgentHello(
        region="eu", edge_tls=EdgeTls(mode="mesh-ca", names=["10.0.0.2", "cp.example.com"])
    )
    with Store.open(tmp_path / "meshline.db") as store:
        refusal = hello_refusal(store, hello, RESERVED)
    assert refusal is not None
    assert refusal.code == grpc.StatusCode.PERMISSION_DENIED
    assert "cp.example.com is a name of the control plane" in refusal.message
