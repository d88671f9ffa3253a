"""CDS: EDS clusters per deployment backend (model version), one per worker protocol.

Workers serve gRPC (HTTP/2 cleartext) and REST (HTTP/1.1) on two ports, so a backend has a
`.grpc` and an `.http` cluster; each is actively health checked with its own protocol. They hold
the backend's tiers (own workers, then other regions' gateways by priority); where the region
runs the version itself, `~local` twins hold only its own workers, for forwarded requests.
The clients' clusters reach other regions' gateways by mTLS (`tls.py`: one socket per peer
region, picked by the host's metadata), and every cluster reaches the activator by mTLS (one
more socket); workers stay plain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from envoy.config.cluster.v3 import cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import base_pb2, config_source_pb2, health_check_pb2, protocol_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.v3 import percent_pb2

from controlplane.ir.model import Backend, DeploymentRoute, HealthCheckSettings, OutlierSettings
from controlplane.translate import wellknown
from controlplane.translate.pb import duration, packed, uint32
from meshline import wire

CONNECT_TIMEOUT_S = 1.0
# Workers are few per region: never spray traffic over unhealthy ones ("panic mode").
HEALTHY_PANIC_THRESHOLD_PERCENT = 0.0
READY_PATH = "/v2/health/ready"
UNHEALTHY_INTERVAL_S = 0.25

# Flow-control windows sized for tensors of a few MiB without stalling on WINDOW_UPDATEs.
HTTP2_STREAM_WINDOW_BYTES = 4 * 1024 * 1024
HTTP2_CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024
HTTP2_MAX_CONCURRENT_STREAMS = 1024
# Envoy's default circuit breakers (1024 requests, 3 concurrent retries) fail requests
# exactly when a worker dies under load; the model's own queue is the real limit.
MAX_REQUESTS = 100_000
MAX_CONCURRENT_RETRIES = 1024


def http2_options() -> protocol_pb2.Http2ProtocolOptions:
    """HTTP/2 settings shared by the downstream listener and the gRPC upstreams."""
    return protocol_pb2.Http2ProtocolOptions(
        max_concurrent_streams=uint32(HTTP2_MAX_CONCURRENT_STREAMS),
        initial_stream_window_size=uint32(HTTP2_STREAM_WINDOW_BYTES),
        initial_connection_window_size=uint32(HTTP2_CONNECTION_WINDOW_BYTES),
    )


def ads_config_source() -> config_source_pb2.ConfigSource:
    """Everything dynamic comes over the one ADS stream of the bootstrap."""
    source = config_source_pb2.ConfigSource(resource_api_version=config_source_pb2.V3)
    source.ads.SetInParent()
    return source


LB_POLICIES = {
    "round_robin": cluster_pb2.Cluster.ROUND_ROBIN,
    "least_request": cluster_pb2.Cluster.LEAST_REQUEST,
    "random": cluster_pb2.Cluster.RANDOM,
    "ring_hash": cluster_pb2.Cluster.RING_HASH,
}
# Forwarded health checks say they are probes; the value is only for logs.
PROBE_HOP = "probe"

SocketMatches = Sequence[cluster_pb2.Cluster.TransportSocketMatch]


@dataclass(frozen=True)
class PeerSockets:
    """The TLS sockets of a gateway's gRPC and REST clusters: to other regions' gateways
    (empty: the peer path is plain text, benchmark only), and to the activator (empty without
    the gateway's certificate)."""

    grpc: SocketMatches = ()
    http: SocketMatches = ()
    activator_grpc: SocketMatches = ()
    activator_http: SocketMatches = ()

    @property
    def activator_only(self) -> PeerSockets:
        """The sockets of the `~local` twins: they never reach another gateway."""
        return PeerSockets(activator_grpc=self.activator_grpc, activator_http=self.activator_http)


def build_clusters(
    route: DeploymentRoute, peers: PeerSockets = PeerSockets()
) -> list[cluster_pb2.Cluster]:
    """Per backend: `.grpc` and `.http` over its tiers, and `~local` twins where it runs here."""
    clusters = []
    for backend in route.backends:
        pairs = [(backend.clusters, peers)]
        if backend.local_endpoints is not None:
            pairs.append((backend.local_clusters, peers.activator_only))
        for pair, sockets in pairs:
            clusters += [
                _grpc_cluster(pair.grpc, route, backend, (*sockets.grpc, *sockets.activator_grpc)),
                _http_cluster(pair.http, route, backend, (*sockets.http, *sockets.activator_http)),
            ]
    return clusters


def probe_headers(route: DeploymentRoute, backend: Backend) -> list[tuple[str, str]]:
    """Identify the backend to a gateway on the far end; workers ignore them.

    A gateway in another region answers the probe from its own workers of that version
    (hop marker set), so the probe passes only while that region can really serve.
    """
    return [
        (wire.DEPLOYMENT_HEADER, route.deployment),
        (wire.ENVIRONMENT_HEADER, route.environment),
        (wire.VERSION_HEADER, backend.version),
        (wire.HOP_HEADER, PROBE_HOP),
    ]


def _grpc_cluster(
    name: str, route: DeploymentRoute, backend: Backend, sockets: SocketMatches
) -> cluster_pb2.Cluster:
    cluster = _eds_cluster(name, route)
    cluster.transport_socket_matches.extend(sockets)
    options = http_protocol_options_pb2.HttpProtocolOptions()
    options.explicit_http_config.http2_protocol_options.CopyFrom(http2_options())
    cluster.typed_extension_protocol_options[wellknown.HTTP_PROTOCOL_OPTIONS].CopyFrom(
        packed(options)
    )
    check = _health_check(route.health_check)
    # service_name "" asks for the whole server's status (grpc.health.v1).
    grpc_check = check.grpc_health_check
    # Envoy's default authority is the cluster name, and '@' (split legs) is not valid there.
    grpc_check.authority = route.authority
    for key, value in probe_headers(route, backend):
        grpc_check.initial_metadata.append(header_value_option(key, value))
    cluster.health_checks.append(check)
    return cluster


def _http_cluster(
    name: str, route: DeploymentRoute, backend: Backend, sockets: SocketMatches
) -> cluster_pb2.Cluster:
    cluster = _eds_cluster(name, route)
    cluster.transport_socket_matches.extend(sockets)
    options = http_protocol_options_pb2.HttpProtocolOptions()
    options.explicit_http_config.http_protocol_options.SetInParent()
    cluster.typed_extension_protocol_options[wellknown.HTTP_PROTOCOL_OPTIONS].CopyFrom(
        packed(options)
    )
    check = _health_check(route.health_check)
    http_check = check.http_health_check
    http_check.path = READY_PATH
    http_check.host = route.authority
    for key, value in probe_headers(route, backend):
        http_check.request_headers_to_add.append(header_value_option(key, value))
    cluster.health_checks.append(check)
    return cluster


def header_value_option(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=key, value=value),
        append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
    )


def _eds_cluster(name: str, route: DeploymentRoute) -> cluster_pb2.Cluster:
    cluster = cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.EDS,
        connect_timeout=duration(CONNECT_TIMEOUT_S),
        lb_policy=LB_POLICIES[route.strategy],
        outlier_detection=_outlier_detection(route.outlier),
    )
    thresholds = cluster.circuit_breakers.thresholds.add(
        max_connections=uint32(MAX_REQUESTS),
        max_pending_requests=uint32(MAX_REQUESTS),
        max_requests=uint32(MAX_REQUESTS),
        max_retries=uint32(MAX_CONCURRENT_RETRIES),
    )
    if route.retry.budget_percent > 0:
        # The budget replaces max_retries: retries may add this share to the active requests.
        thresholds.retry_budget.budget_percent.value = route.retry.budget_percent
        thresholds.retry_budget.min_retry_concurrency.value = max(
            1, route.retry.min_retry_concurrency
        )
    cluster.eds_cluster_config.eds_config.CopyFrom(ads_config_source())
    cluster.eds_cluster_config.service_name = name
    # New hosts are routable as soon as EDS says HEALTHY: the agent reports a worker healthy only
    # after its own gRPC health check passed. Waiting for Envoy's first check as well
    # (ignore_new_hosts_until_first_hc) would open a gap with no routable host whenever the old
    # workers drain in the same EDS update that brings the new ones.
    cluster.common_lb_config.healthy_panic_threshold.CopyFrom(
        percent_pb2.Percent(value=HEALTHY_PANIC_THRESHOLD_PERCENT)
    )
    # Envoy merges health-only host updates for 1 s by default before its worker threads see
    # them: the admin API (what the agent reads) would call a host healthy up to a second before
    # any request can reach it, and Ready would come too early. Apply them at once.
    cluster.common_lb_config.update_merge_window.CopyFrom(duration(0))
    return cluster


def _health_check(settings: HealthCheckSettings) -> health_check_pb2.HealthCheck:
    # A host that failed (or was never checked yet) is retried sooner, so a worker or a
    # region that just came up is routable again quickly.
    unhealthy = duration(min(settings.interval_s, UNHEALTHY_INTERVAL_S))
    return health_check_pb2.HealthCheck(
        timeout=duration(settings.timeout_s),
        interval=duration(settings.interval_s),
        # Until a cluster has had a connection, Envoy checks every host at the no-traffic
        # interval (default 60 s), whatever its health, and ignores unhealthy_interval. A cold
        # start's new worker is the first host of such clusters (the HTTP one, the local one):
        # unhealthy hosts there get the short interval too, healthy ones the normal interval.
        no_traffic_interval=unhealthy,
        no_traffic_healthy_interval=duration(settings.interval_s),
        unhealthy_interval=unhealthy,
        unhealthy_threshold=uint32(settings.unhealthy_threshold),
        healthy_threshold=uint32(settings.healthy_threshold),
    )


def _outlier_detection(settings: OutlierSettings) -> outlier_detection_pb2.OutlierDetection:
    return outlier_detection_pb2.OutlierDetection(
        consecutive_5xx=uint32(settings.consecutive_5xx),
        consecutive_gateway_failure=uint32(settings.consecutive_gateway_failure),
        # Envoy enforces gateway-failure ejection at 0 % unless told otherwise.
        enforcing_consecutive_gateway_failure=uint32(100),
        interval=duration(settings.interval_s),
        base_ejection_time=duration(settings.base_ejection_time_s),
        max_ejection_percent=uint32(settings.max_ejection_percent),
    )
