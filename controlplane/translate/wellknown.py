"""Envoy's own well-known names: xDS type URLs, filter and extension names, and the dynamic
metadata our filters write. The names of *our* resources (clusters, routes, listener) are not
here: the IR carries them (`controlplane.ir.names`)."""

from __future__ import annotations

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
