"""Small but real Envoy resources for the xDS tests (valid for Envoy as they are)."""

from __future__ import annotations

from collections.abc import Iterable

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message

from controlplane.xds import CLUSTER, ENDPOINT, LISTENER, ROUTE

Resources = dict[str, dict[str, Message]]


def _ads_source() -> config_source_pb2.ConfigSource:
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def _address(port: int, host: str = "127.0.0.1") -> address_pb2.Address:
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address=host, port_value=port)
    )


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message, deterministic=True)
    return packed


def cluster(name: str, connect_timeout_ms: int = 1000) -> cluster_pb2.Cluster:
    """An EDS cluster fed over ADS."""
    seconds, ms = divmod(connect_timeout_ms, 1000)
    return cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.EDS,
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=_ads_source()),
        connect_timeout=duration_pb2.Duration(seconds=seconds, nanos=ms * 1_000_000),
        lb_policy=cluster_pb2.Cluster.ROUND_ROBIN,
    )


def load_assignment(
    name: str, ports: Iterable[int] = (9000,)
) -> endpoint_pb2.ClusterLoadAssignment:
    return endpoint_pb2.ClusterLoadAssignment(
        cluster_name=name,
        endpoints=[
            endpoint_components_pb2.LocalityLbEndpoints(
                lb_endpoints=[
                    endpoint_components_pb2.LbEndpoint(
                        endpoint=endpoint_components_pb2.Endpoint(address=_address(port))
                    )
                    for port in ports
                ]
            )
        ],
    )


def listener(name: str, port: int, route_name: str) -> listener_pb2.Listener:
    """An HTTP listener whose routes come from RDS (`route_name`)."""
    hcm = hcm_pb2.HttpConnectionManager(
        stat_prefix=name,
        rds=hcm_pb2.Rds(config_source=_ads_source(), route_config_name=route_name),
        http_filters=[
            hcm_pb2.HttpFilter(
                name="envoy.filters.http.router", typed_config=_pack(router_pb2.Router())
            )
        ],
    )
    return listener_pb2.Listener(
        name=name,
        address=_address(port),
        filter_chains=[
            listener_components_pb2.FilterChain(
                filters=[
                    listener_components_pb2.Filter(
                        name="envoy.filters.network.http_connection_manager",
                        typed_config=_pack(hcm),
                    )
                ]
            )
        ],
    )


def route_config(name: str, cluster_name: str) -> route_pb2.RouteConfiguration:
    """All paths of all hosts to `cluster_name`."""
    return route_pb2.RouteConfiguration(
        name=name,
        virtual_hosts=[
            route_components_pb2.VirtualHost(
                name="all",
                domains=["*"],
                routes=[
                    route_components_pb2.Route(
                        match=route_components_pb2.RouteMatch(prefix="/"),
                        route=route_components_pb2.RouteAction(cluster=cluster_name),
                    )
                ],
            )
        ],
    )


def resources(
    clusters: Iterable[Message] = (),
    assignments: Iterable[Message] = (),
    listeners: Iterable[Message] = (),
    routes: Iterable[Message] = (),
) -> Resources:
    """A `set_resources` argument keyed by each resource's own name."""
    return {
        CLUSTER: {c.name: c for c in clusters},
        ENDPOINT: {a.cluster_name: a for a in assignments},
        LISTENER: {lst.name: lst for lst in listeners},
        ROUTE: {r.name: r for r in routes},
    }
