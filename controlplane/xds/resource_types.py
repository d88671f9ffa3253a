"""The Envoy xDS resource types this server knows by name, and the order pushes follow.

Envoy applies what arrives on one ADS stream in order, so the server pushes make-before-break:
clusters first (CDS), then their endpoints (EDS), then the filter configs listeners name (ECDS),
then listeners (LDS), then the route tables the listeners name (RDS). A route must never point
at a cluster Envoy does not have yet.

CDS and LDS are "wildcard" types in state-of-the-world xDS: every response carries the full set,
and a resource missing from it is deleted by Envoy. EDS and RDS are named subscriptions: a
response carries only the names the stream asked for, and absence means nothing.
"""

from __future__ import annotations

_PREFIX = "type.googleapis.com/"

CLUSTER = _PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = _PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = _PREFIX + "envoy.config.route.v3.RouteConfiguration"
EXTENSION_CONFIG = _PREFIX + "envoy.config.core.v3.TypedExtensionConfig"

PUSH_ORDER: tuple[str, ...] = (CLUSTER, ENDPOINT, EXTENSION_CONFIG, LISTENER, ROUTE)
WILDCARD_TYPES: frozenset[str] = frozenset({CLUSTER, LISTENER})

# A parent push can make Envoy re-request its child types (new or re-created clusters
# re-subscribe to their endpoints; new listeners subscribe to route tables and filter configs).
CHILD_TYPES: dict[str, tuple[str, ...]] = {
    CLUSTER: (ENDPOINT,),
    LISTENER: (ROUTE, EXTENSION_CONFIG),
}


def is_wildcard(type_url: str) -> bool:
    """Whether responses of this type always carry the full set (CDS, LDS)."""
    return type_url in WILDCARD_TYPES


def push_rank(type_url: str) -> tuple[int, str]:
    """Sort key: the four core types in push order, any other type after them."""
    if type_url in PUSH_ORDER:
        return (PUSH_ORDER.index(type_url), "")
    return (len(PUSH_ORDER), type_url)


def message_type_url(full_name: str) -> str:
    """The type URL of a protobuf message type given its full name."""
    return _PREFIX + full_name
