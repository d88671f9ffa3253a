"""EDS: one ClusterLoadAssignment per cluster: its tiers as Envoy priorities and localities.

Priority 0 is the preferred region (the gateway's own workers when it runs the deployment);
other regions' gateways follow in failover order. While a region offloads, the offload targets
share priority 0 by host weights.

Draining workers stay listed as DRAINING: Envoy sends them no new requests but lets the
in-flight ones finish, which removing them outright would not guarantee.
Endpoint.host must be an IP literal: Envoy does not resolve names in EDS (it would NACK).
"""

from __future__ import annotations

from collections.abc import Callable

from envoy.config.core.v3 import address_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2

from controlplane.ir.model import (
    TIER_ACTIVATOR,
    TIER_GATEWAY,
    TIER_LOCAL,
    DeploymentRoute,
    Endpoint,
    Tier,
)
from controlplane.ir.names import ClusterNames
from controlplane.translate import tls, wellknown

# Host weights of a shared priority add up to about this (shares are percent).
WEIGHT_SCALE = 1000


def build_load_assignments(
    route: DeploymentRoute, region: str
) -> list[endpoint_pb2.ClusterLoadAssignment]:
    """Assignments for every cluster of `build_clusters` (grpc_port / http_port per protocol).
    Another region's gateway is a host at its peer listener, marked with its region so that
    the cluster reaches it by mTLS checking that region's identity (`tls.py`); the activator
    is marked so that it is reached by mTLS checking the control plane's."""
    out = []
    for backend in route.backends:
        out += _pair(backend.clusters, list(backend.tiers))
        if backend.local_endpoints is not None:
            local = [Tier(region, TIER_LOCAL, 0, backend.local_endpoints)]
            activator = backend.activator
            if activator is not None:  # forwarded here while cold: held like the rest
                local.append(Tier(region, TIER_ACTIVATOR, 1, (activator,)))
            out += _pair(backend.local_clusters, local)
    return out


def _pair(clusters: ClusterNames, tiers: list[Tier]) -> list[endpoint_pb2.ClusterLoadAssignment]:
    return [
        _assignment(clusters.grpc, tiers, lambda e: e.grpc_port),
        _assignment(clusters.http, tiers, lambda e: e.http_port),
    ]


def health_status(endpoint: Endpoint) -> int:
    """EDS health of a worker: draining wins over healthy, so no new request lands on it."""
    if endpoint.draining:
        return int(health_check_pb2.DRAINING)
    return int(health_check_pb2.HEALTHY if endpoint.healthy else health_check_pb2.UNHEALTHY)


def host_weight(tier: Tier) -> int:
    """Per-host weight so that a priority's tiers get their shares whatever their host counts."""
    if tier.share >= 100 or not tier.endpoints:
        return 0  # unset: all hosts equal
    # Spread over the hosts that can take traffic, so a sick worker does not shrink the share.
    serving = sum(1 for e in tier.endpoints if e.healthy and not e.draining) or len(tier.endpoints)
    return max(1, round(tier.share * WEIGHT_SCALE / 100 / serving))


def _assignment(
    cluster_name: str,
    tiers: list[Tier],
    port_of: Callable[[Endpoint], int],
) -> endpoint_pb2.ClusterLoadAssignment:
    assignment = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster_name)
    shared = {t.priority for t in tiers if t.share < 100}
    for tier in tiers:
        if not tier.endpoints:
            continue
        locality = assignment.endpoints.add(priority=tier.priority)
        locality.locality.region = tier.region
        locality.locality.zone = tier.kind
        weight = host_weight(tier) if tier.priority in shared else 0
        for endpoint in sorted(tier.endpoints, key=lambda e: (e.worker_id, e.host, port_of(e))):
            lb_endpoint = _lb_endpoint(endpoint, port_of(endpoint))
            if weight:
                lb_endpoint.load_balancing_weight.value = weight
            metadata = lb_endpoint.metadata.filter_metadata
            if tier.kind == TIER_GATEWAY:
                metadata[wellknown.TRANSPORT_SOCKET_MATCH_METADATA].CopyFrom(
                    tls.peer_host_metadata(tier.region)
                )
            elif tier.kind == TIER_ACTIVATOR:
                metadata[wellknown.TRANSPORT_SOCKET_MATCH_METADATA].CopyFrom(
                    tls.activator_host_metadata()
                )
                # Not probed: every cold cluster of every gateway would check the one activator
                # (thousands of idle deployments: thousands of probes a second, and a slow answer
                # would mark it unhealthy and fail held requests with "no healthy upstream"). It
                # holds what it cannot answer; unreachable, it fails as a connect failure.
                lb_endpoint.endpoint.health_check_config.disable_active_health_check = True
            locality.lb_endpoints.append(lb_endpoint)
    return assignment


def _lb_endpoint(endpoint: Endpoint, port: int) -> endpoint_components_pb2.LbEndpoint:
    lb_endpoint = endpoint_components_pb2.LbEndpoint(health_status=health_status(endpoint))
    # Shown by the admin /clusters page, so an operator sees which worker is which.
    lb_endpoint.endpoint.hostname = endpoint.worker_id
    lb_endpoint.endpoint.address.CopyFrom(
        address_pb2.Address(
            socket_address=address_pb2.SocketAddress(
                protocol=address_pb2.SocketAddress.TCP, address=endpoint.host, port_value=port
            )
        )
    )
    return lb_endpoint
