"""translate_gateway: one GatewayIR in, the Envoy resources of that region's gateway out."""

from __future__ import annotations

from types import MappingProxyType

from envoy.config.core.v3.extension_pb2 import TypedExtensionConfig

from controlplane.ir import names
from controlplane.ir.model import GatewayIR
from controlplane.translate.access import listener_firewall
from controlplane.translate.clusters import build_clusters
from controlplane.translate.endpoints import build_load_assignments
from controlplane.translate.jwt import jwks_clusters, jwt_authn_config
from controlplane.translate.listener import build_listener
from controlplane.translate.pb import packed
from controlplane.translate.ratelimit import rate_limit_config
from controlplane.translate.resources import EnvoyResources
from controlplane.translate.routes import build_route_configuration
from meshline.keys import DeploymentKey


def translate_gateway(gateway: GatewayIR) -> EnvoyResources:
    """Pure and deterministic: equal IR gives byte-equal resources, every dict sorted by name."""
    _check_unique_keys(gateway)
    clusters = []
    assignments = []
    owners: dict[str, DeploymentKey] = {}
    for route in gateway.routes:
        owner = DeploymentKey(route.environment, route.deployment)
        for cluster in build_clusters(route):
            clusters.append(cluster)
            owners[cluster.name] = owner
        for assignment in build_load_assignments(route, gateway.region, gateway.forwarding.token):
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
        TypedExtensionConfig(
            name=names.FIREWALL_FILTER,
            typed_config=packed(listener_firewall(gateway.forwarding)),
        ),
    ]
    listener = build_listener(gateway)
    route_config = build_route_configuration(gateway)
    return EnvoyResources(
        clusters={c.name: c for c in sorted(clusters, key=lambda c: c.name)},
        endpoints={a.cluster_name: a for a in sorted(assignments, key=lambda a: a.cluster_name)},
        listeners={listener.name: listener},
        routes={route_config.name: route_config},
        extensions={e.name: e for e in sorted(extensions, key=lambda e: e.name)},
        owners=MappingProxyType(owners),
    )


def _check_unique_keys(gateway: GatewayIR) -> None:
    """Two routes with one key would collide in cluster names and virtual host domains."""
    keys = [route.name for route in gateway.routes]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"gateway {gateway.region!r}: deployment routes repeated: {duplicates}")
