"""EnvoyResources: the typed output of the translate stage, one dict per xDS type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.core.v3.extension_pb2 import TypedExtensionConfig
from envoy.config.endpoint.v3.endpoint_pb2 import ClusterLoadAssignment
from envoy.config.listener.v3.listener_pb2 import Listener
from envoy.config.route.v3.route_pb2 import RouteConfiguration
from envoy.extensions.transport_sockets.tls.v3.secret_pb2 import Secret
from google.protobuf.message import Message

from controlplane.translate import wellknown
from meshline.keys import DeploymentKey

# (environment, deployment): the IR's identity of a deployment route.


@dataclass(frozen=True)
class EnvoyResources:
    """All resources one gateway serves, each dict keyed by resource name in sorted order."""

    clusters: dict[str, Cluster]
    endpoints: dict[str, ClusterLoadAssignment]
    listeners: dict[str, Listener]
    routes: dict[str, RouteConfiguration]
    # ECDS: filter configs that change while Envoy runs (credentials, rate limits).
    extensions: dict[str, TypedExtensionConfig] = field(default_factory=dict)
    # SDS: the gateway's certificate and key, and the CAs it trusts (the peer path's mTLS).
    secrets: dict[str, Secret] = field(default_factory=dict)
    # Resource name -> the deployment route it was generated from (clusters and endpoints; the
    # listener and route table are shared). Set while translating: no name is parsed back.
    owners: Mapping[str, DeploymentKey] = field(default_factory=lambda: MappingProxyType({}))

    def by_type_url(self) -> dict[str, dict[str, Message]]:
        """Resources by xDS type URL, in make-before-break push order (SDS, CDS, EDS, ECDS,
        LDS, RDS); SDS only when there are secrets (without TLS Envoy asks for none)."""
        out: dict[str, dict[str, Message]] = {}
        if self.secrets:
            out[wellknown.SECRET_TYPE_URL] = dict(self.secrets)
        out.update(
            {
                wellknown.CLUSTER_TYPE_URL: dict(self.clusters),
                wellknown.ENDPOINT_TYPE_URL: dict(self.endpoints),
                wellknown.EXTENSION_CONFIG_TYPE_URL: dict(self.extensions),
                wellknown.LISTENER_TYPE_URL: dict(self.listeners),
                wellknown.ROUTE_TYPE_URL: dict(self.routes),
            }
        )
        return out

    def deployment_keys(self) -> frozenset[DeploymentKey]:
        """Every deployment these resources route to (the owners of their clusters)."""
        return frozenset(self.owners[name] for name in self.clusters if name in self.owners)
