"""Status of edge TLS: a region shows the mode and the expiry of the certificate its gateway
serves clients as its agent's own handshake found it, not what was asked for or sent."""

from __future__ import annotations

import pytest

from controlplane.agents.registry import AgentRegistry
from controlplane.reconcile import NetworkState
from controlplane.status import LiveStatus, served_edge_tls
from controlplane.xds import SnapshotCache
from meshline.v1 import agent_pb2, resources_pb2

EXPIRES = "2026-12-08T10:00:00Z"
MESH_CA = agent_pb2.EdgeTls(mode="mesh-ca", names=["127.0.0.1"])
FILES = agent_pb2.EdgeTls(mode="files", sds_path="/srv/eu/edge/edge-sds.yaml")


@pytest.mark.parametrize(
    ("asked", "served", "shown"),
    [
        (MESH_CA, EXPIRES, ("mesh-ca", EXPIRES)),
        (FILES, EXPIRES, ("files", EXPIRES)),
        # Asked for, not served yet (no config, a NACK): clients get no TLS.
        (MESH_CA, "", ("", "")),
        (MESH_CA, None, ("", "")),  # no report yet
        (agent_pb2.EdgeTls(), "", ("", "")),  # plain text
    ],
)
def test_served_edge_tls(
    asked: agent_pb2.EdgeTls, served: str | None, shown: tuple[str, str]
) -> None:
    report = None if served is None else agent_pb2.AgentReport(edge_certificate_expires_at=served)
    assert served_edge_tls(asked, report) == shown


def test_region_status_shows_the_served_edge_certificate() -> None:
    registry = AgentRegistry()
    status = LiveStatus(SnapshotCache(1), registry, NetworkState)
    region = resources_pb2.Region()
    region.metadata.name = "eu"
    session = registry.connect(
        agent_pb2.AgentHello(region="eu", gateway_address="127.0.0.1:8443", edge_tls=FILES)
    )
    registry.update_report(session, agent_pb2.AgentReport())
    shown = status.region_status(region)
    assert (shown.edge_tls, shown.edge_certificate_expires_at) == ("", "")
    registry.update_report(session, agent_pb2.AgentReport(edge_certificate_expires_at=EXPIRES))
    shown = status.region_status(region)
    assert (shown.edge_tls, shown.edge_certificate_expires_at) == ("files", EXPIRES)
