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
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message

from controlplane.xds import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET

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


def certificate_secret(name: str, chain_pem: str, key_pem: str) -> secret_pb2.Secret:
    """A certificate with its private key, as SDS carries it."""
    secret = secret_pb2.Secret(name=name)
    secret.tls_certificate.certificate_chain.inline_string = chain_pem
    secret.tls_certificate.private_key.inline_string = key_pem
    return secret


def ca_secret(name: str, ca_pem: str) -> secret_pb2.Secret:
    """The CAs a TLS peer's certificate must chain to."""
    secret = secret_pb2.Secret(name=name)
    secret.validation_context.trusted_ca.inline_string = ca_pem
    return secret


def tls_cluster(name: str, certificate: str, ca: str) -> cluster_pb2.Cluster:
    """An EDS cluster whose upstream TLS takes its certificate and CA from SDS over ADS."""
    context = tls_pb2.UpstreamTlsContext()
    common = context.common_tls_context
    common.tls_certificate_sds_secret_configs.add(name=certificate, sds_config=_ads_source())
    common.validation_context_sds_secret_config.CopyFrom(
        secret_pb2.SdsSecretConfig(name=ca, sds_config=_ads_source())
    )
    result = cluster(name)
    result.transport_socket.name = "envoy.transport_sockets.tls"
    result.transport_socket.typed_config.CopyFrom(_pack(context))
    return result


def resources(
    clusters: Iterable[Message] = (),
    assignments: Iterable[Message] = (),
    listeners: Iterable[Message] = (),
    routes: Iterable[Message] = (),
    secrets: Iterable[Message] | None = None,
) -> Resources:
    """A `set_resources` argument keyed by each resource's own name (SDS only when given)."""
    out: Resources = {
        CLUSTER: {c.name: c for c in clusters},
        ENDPOINT: {a.cluster_name: a for a in assignments},
        LISTENER: {lst.name: lst for lst in listeners},
        ROUTE: {r.name: r for r in routes},
    }
    if secrets is not None:
        out[SECRET] = {s.name: s for s in secrets}
    return out
