"""A self-contained Envoy bootstrap from EnvoyResources: no control plane needed.

EDS clusters become STATIC clusters with their load assignment inlined, each listener's RDS
reference is replaced by the route configuration itself, each ECDS filter by its config, and
the SDS secrets go into static_resources, named by the TLS contexts that used them.
Used to check every generated snapshot with `envoy --mode validate`, to run Envoy in tests, and
for `meshline` static dumps.
"""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, extension_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from controlplane.translate import wellknown
from controlplane.translate.dump import message_to_dict, to_yaml
from controlplane.translate.pb import packed
from controlplane.translate.resources import EnvoyResources
from controlplane.translate.tls import static_socket

DEFAULT_NODE_ID = "meshline-static"


def static_bootstrap(
    resources: EnvoyResources,
    *,
    admin_host: str = "127.0.0.1",
    admin_port: int | None = None,
    node_id: str = DEFAULT_NODE_ID,
    node_cluster: str = "meshline",
) -> bootstrap_pb2.Bootstrap:
    """Everything in static_resources; an admin listener only when `admin_port` is given."""
    bootstrap = bootstrap_pb2.Bootstrap()
    bootstrap.node.id = node_id
    bootstrap.node.cluster = node_cluster
    if admin_port is not None:
        bootstrap.admin.address.CopyFrom(
            address_pb2.Address(
                socket_address=address_pb2.SocketAddress(address=admin_host, port_value=admin_port)
            )
        )
    bootstrap.static_resources.secrets.extend(resources.secrets.values())
    for name, cluster in resources.clusters.items():
        assignment = resources.endpoints.get(name)
        bootstrap.static_resources.clusters.append(_static_cluster(cluster, assignment))
    for listener in resources.listeners.values():
        static = _inline_routes(listener, resources.routes, resources.extensions)
        for chain in static.filter_chains:
            if chain.HasField("transport_socket"):
                chain.transport_socket.CopyFrom(static_socket(chain.transport_socket))
        bootstrap.static_resources.listeners.append(static)
    return bootstrap


def static_bootstrap_yaml(
    resources: EnvoyResources, *, admin_host: str = "127.0.0.1", admin_port: int | None = None
) -> str:
    """static_bootstrap as YAML, ready for `envoy -c`."""
    bootstrap = static_bootstrap(resources, admin_host=admin_host, admin_port=admin_port)
    return to_yaml(message_to_dict(bootstrap))


def _static_cluster(
    cluster: cluster_pb2.Cluster, assignment: endpoint_pb2.ClusterLoadAssignment | None
) -> cluster_pb2.Cluster:
    if cluster.type != cluster_pb2.Cluster.EDS:
        return cluster
    static = cluster_pb2.Cluster()
    static.CopyFrom(cluster)
    for match in static.transport_socket_matches:
        match.transport_socket.CopyFrom(static_socket(match.transport_socket))
    static.ClearField("eds_cluster_config")
    static.type = cluster_pb2.Cluster.STATIC
    static.load_assignment.CopyFrom(
        assignment or endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster.name)
    )
    static.load_assignment.cluster_name = cluster.name
    return static


def _inline_routes(
    listener: listener_pb2.Listener,
    routes: Mapping[str, route_pb2.RouteConfiguration],
    extensions: Mapping[str, extension_pb2.TypedExtensionConfig],
) -> listener_pb2.Listener:
    result = listener_pb2.Listener()
    result.CopyFrom(listener)
    for chain in result.filter_chains:
        for network_filter in chain.filters:
            if network_filter.name != wellknown.HCM_FILTER:
                continue
            manager = hcm_pb2.HttpConnectionManager()
            network_filter.typed_config.Unpack(manager)
            for http_filter in manager.http_filters:
                if http_filter.HasField("config_discovery"):
                    if http_filter.name not in extensions:
                        raise KeyError(f"filter {http_filter.name!r} has no ECDS config")
                    http_filter.typed_config.CopyFrom(extensions[http_filter.name].typed_config)
            network_filter.typed_config.CopyFrom(packed(manager))
            if not manager.HasField("rds"):
                continue
            route_name = manager.rds.route_config_name
            if route_name not in routes:
                raise KeyError(f"listener {listener.name!r} names unknown routes {route_name!r}")
            manager.route_config.CopyFrom(routes[route_name])
            network_filter.typed_config.CopyFrom(packed(manager))
    return result
