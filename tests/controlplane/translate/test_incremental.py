"""GatewayTranslator: the same output as translate_gateway, remaking only what a change touched.

The route tables come out in wire form, assembled from each deployment's serialized parts:
their bytes must be exactly those of the message `build_route_configuration` makes.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from controlplane.ir import TIER_GATEWAY, TIER_LOCAL, Backend, DeploymentRoute, Endpoint, Tier
from controlplane.ir.model import GatewayIR, PeerPath
from controlplane.translate import translate_gateway
from controlplane.translate.dump import resources_to_yaml
from controlplane.translate.resources import EnvoyResources, ParsedOnRead
from controlplane.translate.route_tables import peer_table, public_table
from controlplane.translate.routes import (
    build_peer_route_configuration,
    build_route_configuration,
    gateway_route_parts,
)
from controlplane.translate.translator import GatewayTranslator, routing_view
from tests.controlplane.translate.cases import CASES, FAILOVER_THREE_REGIONS
from tests.controlplane.translate.fixed_tls import gateway_tls


def _route(
    name: str, workers: tuple[Endpoint, ...] = (), timeout_s: float = 30.0
) -> DeploymentRoute:
    tiers = (
        Tier("eu", TIER_LOCAL, 0, workers),
        Tier("us", TIER_GATEWAY, 1, (Endpoint("gateway.us", "10.9.0.2", 11001, 11001),)),
    )
    return DeploymentRoute(
        name,
        "production",
        (Backend("", "v1", tiers=tiers, local_endpoints=workers),),
        request_timeout_s=timeout_s,
    )


def _gateway(*routes: DeploymentRoute) -> GatewayIR:
    return GatewayIR(
        "eu",
        "0.0.0.0",
        10000,
        routes,
        peer=PeerPath("0.0.0.0", 11000, gateway_tls("eu"), peers=("us",)),
    )


WORKER = Endpoint("a-w1", "10.0.0.1", 9000, 8000)
NETWORK = _gateway(*(_route(f"d{i}") for i in range(5)))


def _changed(gateway: GatewayIR, index: int, route: DeploymentRoute) -> GatewayIR:
    routes = list(gateway.routes)
    routes[index] = route
    return replace(gateway, routes=tuple(routes))


@pytest.mark.parametrize("case", sorted(CASES))
def test_route_tables_in_wire_form_are_the_messages_bytes(case: str) -> None:
    gateway = CASES[case]
    parts = gateway_route_parts(gateway)
    public = build_route_configuration(gateway, parts)
    wires = [p.wire for p in parts]
    assert public_table(gateway, wires).data == public.SerializeToString(deterministic=True)
    if gateway.peer.port:
        peer = build_peer_route_configuration(gateway, parts)
        assert peer_table(gateway, wires).data == peer.SerializeToString(deterministic=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_translator_after_other_input_gives_what_a_fresh_translation_gives(case: str) -> None:
    translator = GatewayTranslator()
    translator.translate(NETWORK)
    gateway = CASES[case]
    assert resources_to_yaml(translator.translate(gateway)) == resources_to_yaml(
        translate_gateway(gateway)
    )


def test_nothing_changed_remakes_nothing_and_hands_out_the_same_objects() -> None:
    translator = GatewayTranslator()
    first = translator.translate(NETWORK)
    assert translator.remade == 5
    again = translator.translate(replace(NETWORK, routes=tuple(replace(r) for r in NETWORK.routes)))
    assert translator.remade == 0
    assert all(again.clusters[n] is c for n, c in first.clusters.items())
    assert all(again.endpoints[n] is a for n, a in first.endpoints.items())
    assert _tables(again) is _tables(first)


def test_a_route_change_remakes_that_deployment_and_the_route_tables_only() -> None:
    translator = GatewayTranslator()
    first = translator.translate(NETWORK)
    changed = _changed(NETWORK, 2, _route("d2", timeout_s=12.0))
    out = translator.translate(changed)
    assert translator.remade == 1
    assert _tables(out) is not _tables(first)
    assert resources_to_yaml(out) == resources_to_yaml(translate_gateway(changed))
    kept = [n for n in first.clusters if not n.startswith("d2.")]
    assert kept and all(out.clusters[n] is first.clusters[n] for n in kept)


def test_an_endpoints_change_keeps_the_deployments_clusters_and_the_route_tables() -> None:
    translator = GatewayTranslator()
    first = translator.translate(NETWORK)
    changed = _changed(NETWORK, 1, _route("d1", workers=(WORKER,)))
    out = translator.translate(changed)
    assert translator.remade == 1
    assert all(out.clusters[n] is c for n, c in first.clusters.items())
    assert _tables(out) is _tables(first)
    assert out.endpoints["d1.production.grpc"] != first.endpoints["d1.production.grpc"]
    assert resources_to_yaml(out) == resources_to_yaml(translate_gateway(changed))


def test_whether_the_region_runs_a_version_is_no_endpoints_change() -> None:
    """Serving here or not changes the hop routes and the `~local` clusters: not kept."""
    route = _route("d1")
    elsewhere = replace(route, backends=(replace(route.backends[0], local_endpoints=None),))
    assert routing_view(route) != routing_view(elsewhere)
    translator = GatewayTranslator()
    translator.translate(NETWORK)
    changed = _changed(NETWORK, 1, elsewhere)
    out = translator.translate(changed)
    assert "d1.production~local.grpc" not in out.clusters
    assert resources_to_yaml(out) == resources_to_yaml(translate_gateway(changed))


def test_removed_and_added_deployments() -> None:
    translator = GatewayTranslator()
    translator.translate(NETWORK)
    changed = replace(NETWORK, routes=(*NETWORK.routes[1:], _route("e0")))
    out = translator.translate(changed)
    assert translator.remade == 1
    assert not any(n.startswith("d0.") for n in out.clusters)
    assert resources_to_yaml(out) == resources_to_yaml(translate_gateway(changed))


def test_the_peer_sockets_changing_remakes_everything() -> None:
    translator = GatewayTranslator()
    translator.translate(FAILOVER_THREE_REGIONS)
    fewer = replace(
        FAILOVER_THREE_REGIONS, peer=replace(FAILOVER_THREE_REGIONS.peer, peers=("eu-central",))
    )
    out = translator.translate(fewer)
    assert translator.remade == len(fewer.routes)
    assert resources_to_yaml(out) == resources_to_yaml(translate_gateway(fewer))


def test_a_renewed_certificate_remakes_no_deployment() -> None:
    """The clusters' sockets name SDS secrets: a new certificate changes only the secrets."""
    translator = GatewayTranslator()
    first = translator.translate(FAILOVER_THREE_REGIONS)
    old = gateway_tls("eu-west")
    new = replace(old, certificate_chain=old.certificate_chain + "\n", serial="renewed")
    renewed = replace(FAILOVER_THREE_REGIONS, peer=replace(FAILOVER_THREE_REGIONS.peer, tls=new))
    out = translator.translate(renewed)
    assert translator.remade == 0
    assert out.secrets != first.secrets
    assert resources_to_yaml(out) == resources_to_yaml(translate_gateway(renewed))


def test_repeated_routes_are_refused() -> None:
    with pytest.raises(ValueError, match="repeated"):
        GatewayTranslator().translate(_gateway(_route("d0"), _route("d0")))


def _tables(resources: EnvoyResources) -> object:
    assert isinstance(resources.routes, ParsedOnRead)
    return resources.routes.serialized["gateway"]
