"""xDS stage: per-node (per-region) snapshots of Envoy resources served over ADS.

`SnapshotCache` (cache.py) takes the desired Envoy resources of each node and versions them;
`AdsServer` (server.py) serves them to Envoy in state of the world following the rules in
stream.py (nonces, ACK/NACK, full state for CDS/LDS, warming re-requests, make-before-break push
order), or incrementally (delta xDS) following the same rules per resource in delta_stream.py;
protocols.py records either's answers in the cache alike. This package knows Envoy resources
only: nothing about meshline policies or resources.
"""

from controlplane.xds.cache import SnapshotCache
from controlplane.xds.resource_types import (
    CLUSTER,
    ENDPOINT,
    EXTENSION_CONFIG,
    LISTENER,
    OPTIONAL_TYPES,
    PUSH_ORDER,
    ROUTE,
    SECRET,
)
from controlplane.xds.server import AdsServer, add_ads_to_server
from controlplane.xds.status import Nack, NodeStatus, TypeStatus

__all__ = [
    "CLUSTER",
    "ENDPOINT",
    "EXTENSION_CONFIG",
    "LISTENER",
    "OPTIONAL_TYPES",
    "PUSH_ORDER",
    "ROUTE",
    "SECRET",
    "AdsServer",
    "Nack",
    "NodeStatus",
    "SnapshotCache",
    "TypeStatus",
    "add_ads_to_server",
]
