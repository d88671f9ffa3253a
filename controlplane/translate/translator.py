"""translate_gateway: one GatewayIR in, the Envoy resources of that region's gateway out.

`GatewayTranslator` is the same function with memory, for a network of thousands of
deployments where a change touches one: each deployment's resources (clusters, endpoints, its
share of the route tables) are kept, keyed by the deployment's typed IR and the few gateway
inputs they depend on (region, the peer path's TLS sockets), and remade only when those change.
An endpoints-only change (a worker came or went) remakes that deployment's load assignments
alone: its clusters and routes compare equal by their routing view and are kept, so the route
tables are not reassembled, and the xDS cache sees the very same cluster and route objects
(no new serialization, no new CDS/RDS version).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.core.v3.extension_pb2 import TypedExtensionConfig
from envoy.config.endpoint.v3.endpoint_pb2 import ClusterLoadAssignment

from controlplane.ir import names
from controlplane.ir.model import DeploymentRoute, GatewayIR
from controlplane.translate import edge_tls, tls
from controlplane.translate.clusters import PeerSockets, build_clusters
from controlplane.translate.endpoints import build_load_assignments
from controlplane.translate.jwt import jwks_clusters, jwt_authn_config
from controlplane.translate.listener import build_listeners
from controlplane.translate.pb import packed
from controlplane.translate.ratelimit import rate_limit_config
from controlplane.translate.resources import EnvoyResources, ParsedOnRead, Serialized
from controlplane.translate.route_tables import peer_table, public_table
from controlplane.translate.routes import PartsWire, deployment_route_parts
from meshline.keys import DeploymentKey


def translate_gateway(gateway: GatewayIR) -> EnvoyResources:
    """Pure and deterministic: equal IR gives byte-equal resources, every dict sorted by name."""
    return GatewayTranslator().translate(gateway)


@dataclass(frozen=True)
class _Context:
    """The gateway inputs a deployment's resources depend on besides its own route: the
    region (headers, localities, hop routes), whether it has a peer listener (hop routes),
    and the inputs of its clusters' TLS sockets (a certificate's rotation changes none: the
    sockets name SDS secrets)."""

    region: str
    peer_listener: bool
    peer_tls: bool
    peers: tuple[str, ...]

    @staticmethod
    def of(gateway: GatewayIR) -> _Context:
        peer = gateway.peer
        return _Context(gateway.region, bool(peer.port), peer.tls is not None, peer.peers)


@dataclass(frozen=True)
class DeploymentResources:
    """Everything one deployment route gives its gateway (read-only: shared between calls)."""

    route: DeploymentRoute
    # The route without its hosts: what clusters and routes are made of.
    routing: DeploymentRoute
    clusters: tuple[Cluster, ...]
    assignments: tuple[ClusterLoadAssignment, ...]
    # Its share of the route tables, serialized once (the messages are not kept).
    route_parts: PartsWire


def routing_view(route: DeploymentRoute) -> DeploymentRoute:
    """`route` without what only its load assignments read: the hosts of its tiers and their
    shares (whether the region runs a version itself, and the tiers' priorities, stay)."""
    return replace(
        route,
        backends=tuple(
            replace(
                b,
                tiers=tuple(replace(t, endpoints=(), share=100) for t in b.tiers),
                local_endpoints=None if b.local_endpoints is None else (),
            )
            for b in route.backends
        ),
    )


@dataclass(frozen=True)
class _Tables:
    """The route tables last assembled, and the parts they were assembled from."""

    key: tuple[str, str, str, bool]
    parts: tuple[PartsWire, ...]
    tables: ParsedOnRead


class GatewayTranslator:
    """`translate_gateway` for one region's gateway, remaking only what changed since the
    last call (see the module docstring). Its output equals `translate_gateway`'s for the
    same IR; the messages in it are shared with later outputs and must not be mutated."""

    def __init__(self) -> None:
        self._context: _Context | None = None
        self._peers = PeerSockets()
        self._deployments: dict[str, DeploymentResources] = {}
        self._tables: _Tables | None = None
        # Deployments remade by the last call (for tests and the benchmark).
        self.remade = 0

    def translate(self, gateway: GatewayIR) -> EnvoyResources:
        _check_unique_keys(gateway)
        context = _Context.of(gateway)
        if context != self._context:
            self._context = context
            self._deployments = {}
            self._tables = None
            # Built once: every cluster that may forward holds the same TLS sockets to the
            # peers, and every cluster the same one to the activator.
            self._peers = PeerSockets(
                grpc=tls.peer_socket_matches(gateway, grpc=True),
                http=tls.peer_socket_matches(gateway, grpc=False),
                activator_grpc=tls.activator_socket_matches(gateway, grpc=True),
                activator_http=tls.activator_socket_matches(gateway, grpc=False),
            )
        self.remade = 0
        known = self._deployments
        current: dict[str, DeploymentResources] = {}
        for route in sorted(gateway.routes, key=lambda r: r.name):
            entry = known.get(route.name)
            if entry is None or (entry.route is not route and entry.route != route):
                entry = self._remake(route, entry, context)
                self.remade += 1
            current[route.name] = entry
        self._deployments = current
        entries = list(current.values())
        clusters: list[Cluster] = []
        assignments: list[ClusterLoadAssignment] = []
        owners: dict[str, DeploymentKey] = {}
        for entry in entries:
            owner = entry.route.key
            for cluster in entry.clusters:
                clusters.append(cluster)
                owners[cluster.name] = owner
            for assignment in entry.assignments:
                assignments.append(assignment)
                owners[assignment.cluster_name] = owner
        clusters += jwks_clusters(gateway)
        extensions = [
            TypedExtensionConfig(
                name=names.JWT_AUTHN_FILTER, typed_config=packed(jwt_authn_config(gateway))
            ),
            TypedExtensionConfig(
                name=names.RATE_LIMIT_FILTER, typed_config=packed(rate_limit_config(gateway))
            ),
        ]
        listeners = build_listeners(gateway)
        route_tables = self._route_tables(gateway, tuple(e.route_parts for e in entries))
        return EnvoyResources(
            clusters={c.name: c for c in sorted(clusters, key=lambda c: c.name)},
            endpoints={
                a.cluster_name: a for a in sorted(assignments, key=lambda a: a.cluster_name)
            },
            listeners={li.name: li for li in sorted(listeners, key=lambda li: li.name)},
            routes=route_tables,
            extensions={e.name: e for e in sorted(extensions, key=lambda e: e.name)},
            secrets=dict(sorted({**tls.secrets(gateway), **edge_tls.secrets(gateway)}.items())),
            owners=MappingProxyType(owners),
        )

    def _remake(
        self, route: DeploymentRoute, old: DeploymentResources | None, context: _Context
    ) -> DeploymentResources:
        """The deployment's resources; its clusters and routes kept from `old` when only its
        hosts changed."""
        routing = routing_view(route)
        assignments = tuple(build_load_assignments(route, context.region))
        if old is not None and old.routing == routing:
            return replace(old, route=route, assignments=assignments)
        return DeploymentResources(
            route=route,
            routing=routing,
            clusters=tuple(build_clusters(route, self._peers)),
            assignments=assignments,
            route_parts=deployment_route_parts(
                route, context.region, peer=context.peer_listener
            ).wire,
        )

    def _route_tables(self, gateway: GatewayIR, parts: tuple[PartsWire, ...]) -> ParsedOnRead:
        """The public table and the peer one (when the gateway has a peer listener), in wire
        form (`route_tables.py`), reassembled only when a deployment's parts or the tables'
        own inputs changed."""
        key = (
            gateway.region,
            gateway.route_config_name,
            gateway.peer_route_config_name,
            bool(gateway.peer.port),
        )
        last = self._tables
        if last is not None and last.key == key and _same_objects(last.parts, parts):
            return last.tables
        tables: dict[str, Serialized] = {gateway.route_config_name: public_table(gateway, parts)}
        if gateway.peer.port:
            tables[gateway.peer_route_config_name] = peer_table(gateway, parts)
        self._tables = _Tables(key, parts, ParsedOnRead(dict(sorted(tables.items()))))
        return self._tables.tables


def _same_objects(a: Sequence[object], b: Sequence[object]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def _check_unique_keys(gateway: GatewayIR) -> None:
    """Two routes with one key would collide in cluster names and virtual host domains."""
    seen: set[str] = set()
    duplicates: set[str] = set()
    for route in gateway.routes:
        if route.name in seen:
            duplicates.add(route.name)
        seen.add(route.name)
    if duplicates:
        raise ValueError(
            f"gateway {gateway.region!r}: deployment routes repeated: {sorted(duplicates)}"
        )
