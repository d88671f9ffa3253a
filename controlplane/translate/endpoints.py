"""EDS: one ClusterLoadAssignment per cluster, listing every worker of the deployment.

Draining workers stay listed as DRAINING: Envoy sends them no new requests but lets the
in-flight ones finish, which removing them outright would not guarantee.
Endpoint.host must be an IP literal: Envoy does not resolve names in EDS (it would NACK).
"""

from __future__ import annotations

from collections.abc import Callable

from envoy.config.core.v3 import address_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from google.protobuf.message import Message

from controlplane.ir.model import DeploymentRoute, Endpoint
from controlplane.translate import names


def build_load_assignments(
    route: DeploymentRoute, region: str
) -> list[endpoint_pb2.ClusterLoadAssignment]:
    """Assignments for the `.grpc` (grpc_port) and `.http` (http_port) clusters."""
    return [
        _assignment(names.cluster_name_grpc(route.key), route, region, lambda e: e.grpc_port),
        _assignment(names.cluster_name_http(route.key), route, region, lambda e: e.http_port),
    ]


def health_status(endpoint: Endpoint) -> int:
    """EDS health of a worker: draining wins over healthy, so no new request lands on it."""
    if endpoint.draining:
        return int(health_check_pb2.DRAINING)
    return int(health_check_pb2.HEALTHY if endpoint.healthy else health_check_pb2.UNHEALTHY)


def _assignment(
    cluster_name: str, route: DeploymentRoute, region: str, port_of: Callable[[Endpoint], int]
) -> endpoint_pb2.ClusterLoadAssignment:
    assignment = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster_name)
    if not route.endpoints:
        return assignment
    locality = assignment.endpoints.add()
    locality.locality.region = region
    for endpoint in sorted(route.endpoints, key=lambda e: (e.worker_id, e.host, port_of(e))):
        locality.lb_endpoints.append(_lb_endpoint(endpoint, port_of(endpoint)))
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


def host_health(assignment: Message) -> dict[str, int]:
    """`host:port` → EDS health status of every host in an assignment (read back from an ACK)."""
    return {
        f"{lb.endpoint.address.socket_address.address}:"
        f"{lb.endpoint.address.socket_address.port_value}": lb.health_status
        for locality in assignment.endpoints
        for lb in locality.lb_endpoints
    }
