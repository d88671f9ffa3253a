"""Names shared by the generated resources, so every module (and the xds stage) agrees on them."""

from __future__ import annotations

LISTENER_NAME = "gateway"
ROUTE_CONFIG_NAME = "gateway"
STAT_PREFIX = "gateway"

GRPC_SUFFIX = ".grpc"
TRACK_SEPARATOR = "@"
LOCAL_MARK = "~local"
HTTP_SUFFIX = ".http"

CLUSTER_TYPE_URL = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT_TYPE_URL = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER_TYPE_URL = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE_TYPE_URL = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"

HCM_FILTER = "envoy.filters.network.http_connection_manager"
ROUTER_FILTER = "envoy.filters.http.router"
GRPC_STATS_FILTER = "envoy.filters.http.grpc_stats"
HEADER_TO_METADATA_FILTER = "envoy.filters.http.header_to_metadata"
HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

# Dynamic metadata where the 404 route keeps the deployment name parsed from the path.
METADATA_NAMESPACE = "meshline"
METADATA_DEPLOYMENT_KEY = "deployment"


def cluster_name_grpc(key: str) -> str:
    """Cluster of a deployment's gRPC (OIP v2, HTTP/2 cleartext) port."""
    return f"{key}{GRPC_SUFFIX}"


def cluster_name_http(key: str) -> str:
    """Cluster of a deployment's REST (`/v2/...`, HTTP/1.1) port."""
    return f"{key}{HTTP_SUFFIX}"


def backend_key(key: str, track: str, local: bool = False) -> str:
    """`{deployment}.{environment}[@{version}][~local]`: the base name of a backend's clusters.

    `@version` names a split or mirror leg (the deployment's own version has none); `~local`
    the cluster of the region's own workers only, which forwarded requests use.
    """
    base = f"{key}{TRACK_SEPARATOR}{track}" if track else key
    return f"{base}{LOCAL_MARK}" if local else base


def deployment_clusters(environment: str, deployment: str, track: str) -> tuple[str, str]:
    """The (gRPC, REST) clusters of one track of a deployment, as every gateway names them."""
    base = backend_key(f"{deployment}.{environment}", track)
    return cluster_name_grpc(base), cluster_name_http(base)


def deployment_key_of_cluster(cluster_name: str) -> str | None:
    """The `{deployment}.{environment}` key a cluster serves, or None for a foreign name."""
    for suffix in (GRPC_SUFFIX, HTTP_SUFFIX):
        if cluster_name.endswith(suffix):
            base = cluster_name[: -len(suffix)]
            base = base.removesuffix(LOCAL_MARK)
            return base.split(TRACK_SEPARATOR, 1)[0]
    return None


def authority_virtual_host_name(key: str) -> str:
    """Virtual host for gRPC clients that name the deployment in `:authority`."""
    return f"authority.{key}"


def route_name(key: str, kind: str) -> str:
    """Name of one route of a deployment (shows in Envoy stats and the admin config dump)."""
    return f"{key}.{kind}"
