"""EnvoyResources: the typed output of the translate stage, one dict per xDS type."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
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


@dataclass(frozen=True, eq=False)
class Serialized:
    """A resource already in wire form (a route table assembled from its deployments'
    serialized parts), with a digest of its content; parsed only when something reads it.
    The xDS cache takes it as it is (its `message_type`, `data` and `digest`)."""

    message_type: type[Message]
    data: bytes = field(repr=False)
    digest: bytes = field(repr=False)

    @cached_property
    def message(self) -> Message:
        return self.message_type.FromString(self.data)


class ParsedOnRead(Mapping[str, Message]):
    """Name -> message of resources held in wire form, each parsed when first read."""

    def __init__(self, serialized: Mapping[str, Serialized]) -> None:
        self.serialized = MappingProxyType(dict(serialized))

    def __getitem__(self, name: str) -> Message:
        return self.serialized[name].message

    def __iter__(self) -> Iterator[str]:
        return iter(self.serialized)

    def __len__(self) -> int:
        return len(self.serialized)


def _for_cache(resources: Mapping[str, Message]) -> dict[str, Message | Serialized]:
    """What the xDS cache gets: the wire form where there is one, so nothing is serialized
    again."""
    if isinstance(resources, ParsedOnRead):
        return dict(resources.serialized)
    return dict(resources)


@dataclass(frozen=True)
class EnvoyResources:
    """All resources one gateway serves, each dict keyed by resource name in sorted order."""

    clusters: dict[str, Cluster]
    endpoints: dict[str, ClusterLoadAssignment]
    listeners: dict[str, Listener]
    # Route tables: messages, or (from the translator) held in wire form, parsed on read.
    routes: Mapping[str, RouteConfiguration]
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
        return {type_url: dict(resources) for type_url, resources in self._typed().items()}

    def for_cache(self) -> dict[str, dict[str, Message | Serialized]]:
        """`by_type_url` as the xDS cache takes it: route tables held in wire form stay so
        (nothing parsed, nothing serialized again)."""
        return {type_url: _for_cache(resources) for type_url, resources in self._typed().items()}

    def _typed(self) -> dict[str, Mapping[str, Message]]:
        out: dict[str, Mapping[str, Message]] = {}
        if self.secrets:
            out[wellknown.SECRET_TYPE_URL] = self.secrets
        out.update(
            {
                wellknown.CLUSTER_TYPE_URL: self.clusters,
                wellknown.ENDPOINT_TYPE_URL: self.endpoints,
                wellknown.EXTENSION_CONFIG_TYPE_URL: self.extensions,
                wellknown.LISTENER_TYPE_URL: self.listeners,
                wellknown.ROUTE_TYPE_URL: self.routes,
            }
        )
        return out

    def deployment_keys(self) -> frozenset[DeploymentKey]:
        """Every deployment these resources route to (the owners of their clusters)."""
        return frozenset(self.owners[name] for name in self.clusters if name in self.owners)
