"""Envoy's own well-known names: xDS type URLs, filter and extension names, and the dynamic
metadata our filters write. The names of *our* resources (clusters, routes, listener) are not
here: the IR carries them (`controlplane.ir.names`)."""

from __future__ import annotations

CLUSTER_TYPE_URL = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT_TYPE_URL = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER_TYPE_URL = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE_TYPE_URL = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
SECRET_TYPE_URL = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

HCM_FILTER = "envoy.filters.network.http_connection_manager"
ROUTER_FILTER = "envoy.filters.http.router"
GRPC_STATS_FILTER = "envoy.filters.http.grpc_stats"
HEADER_TO_METADATA_FILTER = "envoy.filters.http.header_to_metadata"
HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

# Dynamic metadata where the 404 route keeps the deployment name parsed from the path.
METADATA_NAMESPACE = "meshline"
METADATA_DEPLOYMENT_KEY = "deployment"
# The ECDS type: a filter's typed config as its own xDS resource.
EXTENSION_CONFIG_TYPE_URL = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
# Where jwt_authn writes a verified token's payload (whatever the filter instance is named).
JWT_AUTHN_METADATA = "envoy.filters.http.jwt_authn"
# Answers the gateway gives itself (a route's own refusal) mark this key, so that the local
# reply mapping of 403 leaves them as they are and rewrites only RBAC's.
METADATA_OWN_ANSWER_KEY = "own_answer"
# TLS, and the host metadata a cluster's transport_socket_matches are compared with.
TLS_TRANSPORT_SOCKET = "envoy.transport_sockets.tls"
TRANSPORT_SOCKET_MATCH_METADATA = "envoy.transport_socket_match"
