"""translate_gateway: one GatewayIR in, the Envoy resources of that region's gateway out."""

from __future__ import annotations

from types import MappingProxyType

from envoy.config.core.v3.extension_pb2 import TypedExtensionConfig

from controlplane.ir import names
from controlplane.ir.model import GatewayIR
from controlplane.translate import edge_tls, tls
from controlplane.translate.clusters import PeerSockets, build_clusters
from controlplane.translate.endpoints import build_load_assignments
from controlplane.translate.jwt import jwks_clusters, jwt_authn_config
from controlplane.translate.listener import build_listeners
from controlplane.translate.pb import packed
from controlplane.translate.ratelimit import rate_limit_config
from controlplane.translate.resources import EnvoyResources
from controlplane.translate.routes import (
    build_peer_route_configuration,
    build_route_configuration,
)
from meshline.keys import DeploymentKey


def translate_gateway(gateway: GatewayIR) -> EnvoyResources:
    """Pure and deterministic: equal IR gives byte-equal resources, every dict sorted by name."""
    _check_unique_keys(gateway)
    clusters = []
    assignments = []
    owners: dict[str, DeploymentKey] = {}
    # Built once: every cluster that may forward holds the same TLS sockets to the peers, and
    # every cluster the same one to the activator.
    peers = PeerSockets(
        grpc=tls.peer_socket_matches(gateway, grpc=True),
        http=tls.peer_socket_matches(gateway, grpc=False),
        activator_grpc=tls.activator_socket_matches(gateway, grpc=True),
        activator_http=tls.activator_socket_matches(gateway, grpc=False),
    )
    for route in gateway.routes:
        owner = DeploymentKey(route.environment, route.deployment)
        for cluster in build_clusters(route, peers):
            clusters.append(cluster)
            owners[cluster.name] = owner
        for assignment in build_load_assignments(route, gateway.region):
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
    route_configs = [build_route_configuration(gateway)]
    if gateway.peer.port:
        route_configs.append(build_peer_route_configuration(gateway))
    return EnvoyResources(
        clusters={c.name: c for c in sorted(clusters, key=lambda c: c.name)},
        endpoints={a.cluster_name: a for a in sorted(assignments, key=lambda a: a.cluster_name)},
        listeners={li.name: li for li in sorted(listeners, key=lambda li: li.name)},
        routes={r.name: r for r in sorted(route_configs, key=lambda r: r.name)},
        extensions={e.name: e for e in sorted(extensions, key=lambda e: e.name)},
        secrets=dict(sorted({**tls.secrets(gateway), **edge_tls.secrets(gateway)}.items())),
        owners=MappingProxyType(owners),
    )


def _check_unique_keys(gateway: GatewayIR) -> None:
    """Two routes with one key would collide in cluster names and virtual host domains."""
    keys = [route.name for route in gateway.routes]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"gateway {gateway.region!r}: deployment routes repeated: {duplicates}")
