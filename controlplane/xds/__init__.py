"""xDS stage: per-node (per-region) snapshots of Envoy resources served over ADS (SotW).

`SnapshotCache` (cache.py) takes the desired Envoy resources of each node and versions them;
`AdsServer` (server.py) serves them to Envoy following the rules in stream.py (nonces, ACK/NACK,
full state for CDS/LDS, warming re-requests, make-before-break push order). This package knows
Envoy resources only: nothing about meshline policies or resources.
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
