"""The Envoy xDS resource types this server knows by name, and the order pushes follow.

Envoy applies what arrives on one ADS stream in order, so the server pushes make-before-break:
secrets first (SDS: the certificates and trusted CAs that clusters and listeners name), then
clusters (CDS), then their endpoints (EDS), then the filter configs listeners name (ECDS), then
listeners (LDS), then the route tables the listeners name (RDS). A route must never point at a
cluster Envoy does not have yet, and a rotated certificate reaches Envoy before anything that
was built for it.

CDS and LDS are "wildcard" types in state-of-the-world xDS: every response carries the full set,
and a resource missing from it is deleted by Envoy. EDS, RDS and SDS are named subscriptions: a
response carries only the names the stream asked for, and absence means nothing.
"""

from __future__ import annotations

_PREFIX = "type.googleapis.com/"

CLUSTER = _PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = _PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = _PREFIX + "envoy.config.route.v3.RouteConfiguration"
EXTENSION_CONFIG = _PREFIX + "envoy.config.core.v3.TypedExtensionConfig"
SECRET = _PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"

# The types every node's snapshot has (empty when it has none of them), in push order.
PUSH_ORDER: tuple[str, ...] = (CLUSTER, ENDPOINT, EXTENSION_CONFIG, LISTENER, ROUTE)
# Types a snapshot has only when the node's config uses them (a gateway without TLS asks for no
# secret, so an empty SDS would never be answered), and where each goes in the push order.
OPTIONAL_TYPES: tuple[str, ...] = (SECRET,)
_RANKED: tuple[str, ...] = (SECRET, *PUSH_ORDER)
WILDCARD_TYPES: frozenset[str] = frozenset({CLUSTER, LISTENER})

# A parent push can make Envoy re-request its child types (new or re-created clusters
# re-subscribe to their endpoints; new listeners subscribe to route tables and filter configs;
# both may subscribe to the secrets their TLS names).
CHILD_TYPES: dict[str, tuple[str, ...]] = {
    CLUSTER: (ENDPOINT, SECRET),
    LISTENER: (ROUTE, EXTENSION_CONFIG, SECRET),
}


def is_wildcard(type_url: str) -> bool:
    """Whether responses of this type always carry the full set (CDS, LDS)."""
    return type_url in WILDCARD_TYPES


def push_rank(type_url: str) -> tuple[int, str]:
    """Sort key: the known types in push order (secrets first), any other type after them."""
    if type_url in _RANKED:
        return (_RANKED.index(type_url), "")
    return (len(_RANKED), type_url)


def message_type_url(full_name: str) -> str:
    """The type URL of a protobuf message type given its full name."""
    return _PREFIX + full_name
