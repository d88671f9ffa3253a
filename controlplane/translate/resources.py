"""EnvoyResources: the typed output of the translate stage, one dict per xDS type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.endpoint.v3.endpoint_pb2 import ClusterLoadAssignment
from envoy.config.listener.v3.listener_pb2 import Listener
from envoy.config.route.v3.route_pb2 import RouteConfiguration
from google.protobuf.message import Message

from controlplane.translate import names

# (environment, deployment): the IR's identity of a deployment route.
RouteKey = tuple[str, str]


@dataclass(frozen=True)
class EnvoyResources:
    """All resources one gateway serves, each dict keyed by resource name in sorted order."""

    clusters: dict[str, Cluster]
    endpoints: dict[str, ClusterLoadAssignment]
    listeners: dict[str, Listener]
    routes: dict[str, RouteConfiguration]
    # Resource name -> the deployment route it was generated from (clusters and endpoints; the
    # listener and route table are shared). Set while translating: no name is parsed back.
    owners: Mapping[str, RouteKey] = field(default_factory=lambda: MappingProxyType({}))

    def by_type_url(self) -> dict[str, dict[str, Message]]:
        """Resources by xDS type URL, in make-before-break push order (CDS, EDS, LDS, RDS)."""
        return {
            names.CLUSTER_TYPE_URL: dict(self.clusters),
            names.ENDPOINT_TYPE_URL: dict(self.endpoints),
            names.LISTENER_TYPE_URL: dict(self.listeners),
            names.ROUTE_TYPE_URL: dict(self.routes),
        }

    def deployment_keys(self) -> frozenset[str]:
        """`{deployment}.{environment}` of every deployment these resources route to."""
        keys = (names.deployment_key_of_cluster(name) for name in self.clusters)
        return frozenset(key for key in keys if key is not None)
