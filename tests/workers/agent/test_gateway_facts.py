"""What one reading of Envoy's admin says about the workers and the clusters clients use, as
tables. Cluster and host names are opaque here: the control plane says which clusters are
local and which hostnames are outside the region, whatever their shape."""

from __future__ import annotations

import pytest

from meshline.v1 import agent_pb2
from workers.agent.envoy_process import GatewayView, HostTraffic
from workers.agent.gateway_facts import (
    WorkerAddresses,
    WorkerRoute,
    gateway_facts,
    local_clusters,
)

CLIENT, LOCAL = "clients-of-d", "only-region-workers-of-d"
LOCAL_SET = frozenset({LOCAL})
REMOTE = frozenset({"elsewhere-1", "waker"})
WORKER = WorkerAddresses("w", "10.0.0.1:9000", "10.0.0.1:9001")
GATEWAY, ACTIVATOR, RETIRED = "10.0.0.2:8000", "10.0.0.3:7000", "10.0.0.4:9000"
HOSTNAMES = {
    WORKER.grpc_address: "w",
    GATEWAY: "elsewhere-1",
    ACTIVATOR: "waker",
    RETIRED: "gone-worker",
}


def test_local_clusters_are_the_union_of_the_workloads() -> None:
    workloads = [
        agent_pb2.Workload(local_clusters=["a", "b"]),
        agent_pb2.Workload(local_clusters=["b", "c"]),
        agent_pb2.Workload(),
    ]
    assert local_clusters(workloads) == {"a", "b", "c"}


FORWARDING = {
    "a local cluster is left out": (
        GatewayView(routable_by_cluster={CLIENT: frozenset(), LOCAL: frozenset()}),
        {CLIENT: (0, 0, 0, [])},
    ),
    "routable hosts are counted and named as Envoy shows them": (
        GatewayView(
            routable_by_cluster={CLIENT: frozenset({WORKER.grpc_address, GATEWAY, "10.9.9.9:1"})},
            hostnames=HOSTNAMES,
        ),
        {CLIENT: (3, 0, 0, ["elsewhere-1", "w"])},
    ),
    "only traffic to hosts outside the region counts": (
        GatewayView(
            traffic={
                CLIENT: {
                    RETIRED: HostTraffic(active=0, total=40),
                    GATEWAY: HostTraffic(active=1, total=5),
                    ACTIVATOR: HostTraffic(active=2, total=2),
                },
                LOCAL: {RETIRED: HostTraffic(active=3, total=9)},
            },
            hostnames=HOSTNAMES,
        ),
        {CLIENT: (0, 3, 7, [])},
    ),
    "a host that only holds requests (the activator) is never routable": (
        GatewayView(
            routable_by_cluster={CLIENT: frozenset({ACTIVATOR, GATEWAY})},
            hostnames=HOSTNAMES,
        ),
        {CLIENT: (1, 0, 0, [HOSTNAMES[GATEWAY]])},
    ),
}


@pytest.mark.parametrize(("view", "expected"), FORWARDING.values(), ids=FORWARDING.keys())
def test_forwarding(
    view: GatewayView, expected: dict[str, tuple[int, int, int, list[str]]]
) -> None:
    facts = gateway_facts(view, [], LOCAL_SET, REMOTE, frozenset({HOSTNAMES[ACTIVATOR]}))
    assert {
        name: (c.routable_hosts, c.inflight, c.requests, list(c.routable_hostnames))
        for name, c in facts.forwarding.items()
    } == expected


def test_traffic_of_local_clusters_is_left_out() -> None:
    stats = {
        CLIENT: agent_pb2.ClusterTraffic(cluster=CLIENT, requests=3),
        LOCAL: agent_pb2.ClusterTraffic(cluster=LOCAL, requests=9),
    }
    facts = gateway_facts(GatewayView(cluster_stats=stats), [], LOCAL_SET, REMOTE)
    assert list(facts.traffic) == [CLIENT]


def test_nothing_is_said_about_clusters_before_the_control_plane_named_them() -> None:
    """Before the first DesiredState the agent cannot tell a local cluster or the activator
    from the clients' clusters and other gateways: it reports none, but still its workers."""
    view = GatewayView(
        routable=frozenset({WORKER.grpc_address, WORKER.http_address}),
        routable_by_cluster={CLIENT: frozenset({ACTIVATOR}), LOCAL: frozenset()},
        cluster_stats={CLIENT: agent_pb2.ClusterTraffic(cluster=CLIENT, requests=3)},
        hostnames=HOSTNAMES,
    )
    before = gateway_facts(view, [WORKER], frozenset(), frozenset(), told=False)
    assert (before.forwarding, before.traffic) == ({}, {})
    assert before.workers[WORKER.worker_id].routable
    after = gateway_facts(view, [WORKER], LOCAL_SET, REMOTE, frozenset({HOSTNAMES[ACTIVATOR]}))
    assert after.forwarding[CLIENT].routable_hosts == 0 and list(after.traffic) == [CLIENT]


ROUTES = {
    "both ports routable: routable, in flight summed": (
        GatewayView(
            routable=frozenset({WORKER.grpc_address, WORKER.http_address}),
            inflight={WORKER.grpc_address: 2, WORKER.http_address: 3},
        ),
        WorkerRoute(True, 5),
    ),
    "one port routable: not routable": (
        GatewayView(routable=frozenset({WORKER.grpc_address}), inflight={WORKER.grpc_address: 1}),
        WorkerRoute(False, 1),
    ),
    "admin unreachable: nothing routable, nothing in flight": (None, WorkerRoute(False, 0)),
}


@pytest.mark.parametrize(("view", "expected"), ROUTES.values(), ids=ROUTES.keys())
def test_worker_routes(view: GatewayView | None, expected: WorkerRoute) -> None:
    facts = gateway_facts(view, [WORKER], LOCAL_SET, REMOTE)
    assert facts.workers == {"w": expected}
    if view is None:
        assert (facts.forwarding, facts.traffic) == ({}, {})
