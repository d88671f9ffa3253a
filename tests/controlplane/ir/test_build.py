"""build_network: resolved deployments + agent reports → one GatewayIR per reporting region."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from controlplane.ir import TIER_ACTIVATOR, TIER_GATEWAY, TIER_LOCAL
from controlplane.ir.build import (
    ColdRegions,
    GatewayAddress,
    activator_endpoint,
    activator_reachable,
    build_network,
)
from controlplane.ir.model import GatewayTls, NetworkIR
from controlplane.policy import ResolvedDeployment, resolve_deployment
from meshline.v1 import agent_pb2
from meshline.v1.resources_pb2 import Deployment, Environment
from tests.controlplane.store.builders import policy
from tests.controlplane.store.builders import region as region_resource

S = agent_pb2.WorkerState
REGIONS = {
    r.region.metadata.name: r.region
    for r in (
        region_resource("eu-west", "FR", "EU"),
        region_resource("eu-central", "DE", "EU"),
        region_resource("us-east", "US", "NA"),
    )
}
# Public listener 800x, peer listener (forwarded requests, mTLS) 900x.
GATEWAYS = {
    name: GatewayAddress("127.0.0.1", 8000 + i, GatewayAddress("127.0.0.1", 9000 + i))
    for i, name in enumerate(("eu-west", "eu-central", "us-east"), start=1)
}
TLS = {region: GatewayTls(f"chain of {region}", f"key of {region}", "ca") for region in GATEWAYS}


def _worker(
    wid: str,
    dep: str,
    state: int,
    port: int,
    env: str = "production",
    track: str = "",
    routable: bool = True,
) -> agent_pb2.WorkerReport:
    return agent_pb2.WorkerReport(
        worker_id=wid,
        deployment=dep,
        environment=env,
        revision="r1",
        grpc_address=f"127.0.0.1:{port}",
        http_address=f"127.0.0.1:{port + 1}",
        state=S.ValueType(state),
        gateway_routable=routable,
        track=track,
    )


def _resolved(
    name: str,
    policies: Sequence[dict[str, Any]] = (),
    env: str = "production",
    version: str = "v1",
) -> ResolvedDeployment:
    dep = Deployment()
    dep.metadata.name = name
    dep.spec.environment = env
    dep.spec.model = "m"
    dep.spec.version = version
    dep.spec.replicas = 1
    dep.spec.policies.extend(policy(p) for p in policies)
    environment = Environment()
    environment.metadata.name = env
    return resolve_deployment(dep, environment, list(REGIONS.values()))


def _tiers(route: Any, track: str = "") -> list[tuple[int, str, str, int]]:
    backend = next(b for b in route.backends if b.track == track)
    return [(t.priority, t.region, t.kind, t.share) for t in backend.tiers]


def test_local_workers_first_then_other_regions_nearest_first() -> None:
    dep = _resolved("a")
    workers = {
        "eu-west": [
            _worker("w-2", "a", S.WORKER_STATE_STARTING, 100),
            _worker("w-1", "a", S.WORKER_STATE_HEALTHY, 200),
        ],
        "eu-central": [_worker("c-1", "a", S.WORKER_STATE_HEALTHY, 300)],
        "us-east": [_worker("u-1", "a", S.WORKER_STATE_DRAINING, 400)],
    }
    network = build_network([dep], REGIONS, GATEWAYS, workers)
    west = network.gateway("eu-west")
    assert west is not None and west.listen_port == 8001
    (route,) = west.routes
    assert _tiers(route) == [
        (0, "eu-west", TIER_LOCAL, 100),
        (1, "eu-central", TIER_GATEWAY, 100),  # same continent before another continent
        (2, "us-east", TIER_GATEWAY, 100),
    ]
    local, central, us = route.main.tiers
    assert [(e.worker_id, e.healthy, e.draining) for e in local.endpoints] == [
        ("w-1", True, False),
        ("w-2", False, False),
    ]
    assert local.endpoints[0].grpc_port == 200 and local.endpoints[0].http_port == 201
    # Another region counts as healthy only while its own gateway routes to a healthy worker.
    # Another region's gateway is reached at its peer listener.
    assert central.endpoints[0].healthy and central.endpoints[0].grpc_port == 9002
    assert not us.endpoints[0].healthy
    assert route.main.local_endpoints == local.endpoints


def test_entry_region_outside_the_placement_only_forwards_to_allowed_regions() -> None:
    dep = _resolved("eu-only", [{"location": {"continents": ["EU"]}}])
    network = build_network([dep], REGIONS, GATEWAYS, {})
    us = network.gateway("us-east")
    assert us is not None
    (route,) = us.routes
    assert {t[1] for t in _tiers(route)} == {"eu-central", "eu-west"}
    assert all(kind == TIER_GATEWAY for _, _, kind, _ in _tiers(route))
    assert route.main.local_endpoints is None and not route.served_here


def test_failover_disabled_keeps_traffic_in_the_entry_region() -> None:
    dep = _resolved("a", [{"failover": {"disabled": True}}])
    network = build_network([dep], REGIONS, GATEWAYS, {})
    route = network.gateway("eu-central").routes[0]  # type: ignore[union-attr]
    assert _tiers(route) == [(0, "eu-central", TIER_LOCAL, 100)]


def test_failover_regions_and_explicit_order() -> None:
    dep = _resolved(
        "a",
        [
            {"routing": {"region_preference": "ordered", "region_order": ["us-east"]}},
            {"failover": {"regions": ["eu-west"]}},
        ],
    )
    network = build_network([dep], REGIONS, GATEWAYS, {})
    route = network.gateway("eu-central").routes[0]  # type: ignore[union-attr]
    assert _tiers(route) == [(0, "us-east", TIER_GATEWAY, 100), (1, "eu-west", TIER_GATEWAY, 100)]


def test_offload_moves_targets_into_priority_zero_with_shares() -> None:
    dep = _resolved("a", [{"offload": {"max_inflight_per_replica": 2, "regions": ["us-east"]}}])
    network = build_network(
        [dep], REGIONS, GATEWAYS, {}, offload={("production", "a", "eu-west"): 30}
    )
    route = network.gateway("eu-west").routes[0]  # type: ignore[union-attr]
    assert route.offload_percent == 30
    assert _tiers(route) == [
        (0, "eu-west", TIER_LOCAL, 70),
        (0, "us-east", TIER_GATEWAY, 30),
        (1, "eu-central", TIER_GATEWAY, 100),
    ]


def test_regions_without_a_connected_gateway_are_no_failover_target() -> None:
    dep = _resolved("a")
    gateways = {"eu-west": GATEWAYS["eu-west"]}
    network = build_network([dep], REGIONS, gateways, {})
    assert [g.region for g in network.gateways] == ["eu-west"]
    route = network.gateway("eu-west").routes[0]  # type: ignore[union-attr]
    assert _tiers(route) == [(0, "eu-west", TIER_LOCAL, 100)]
    assert route.main.tiers[0].endpoints == ()


def test_split_and_mirror_versions_are_backends_with_their_own_workers() -> None:
    dep = _resolved(
        "a",
        [
            {
                "traffic": {
                    "split": [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}],
                    "mirror": {"version": "v3", "percent": 25},
                }
            }
        ],
    )
    workers = {
        "eu-west": [
            _worker("main", "a", S.WORKER_STATE_HEALTHY, 100),
            _worker("canary", "a", S.WORKER_STATE_HEALTHY, 200, track="v2"),
            _worker("shadow", "a", S.WORKER_STATE_HEALTHY, 300, track="v3"),
        ]
    }
    network = build_network([dep], REGIONS, GATEWAYS, workers)
    route = network.gateway("eu-west").routes[0]  # type: ignore[union-attr]
    assert [(b.track, b.version, b.weight, b.mirror_percent) for b in route.backends] == [
        ("", "v1", 90, 0.0),
        ("v2", "v2", 10, 0.0),
        ("v3", "v3", 0, 25.0),
    ]
    assert [[e.worker_id for e in b.local_endpoints or ()] for b in route.backends] == [
        ["main"],
        ["canary"],
        ["shadow"],
    ]


ACTIVATOR = activator_endpoint("10.8.0.1", 7001, 7002)


def test_a_cold_region_gets_the_activator_last_after_warm_regions() -> None:
    dep = _resolved("a")
    cold = ColdRegions(frozenset({("production", "a", "", "eu-west")}), ACTIVATOR)
    workers = {"eu-central": [_worker("c-1", "a", S.WORKER_STATE_HEALTHY, 300)]}
    network = build_network([dep], REGIONS, GATEWAYS, workers, cold=cold, tls=TLS)
    west = network.gateway("eu-west")
    assert west is not None
    (route,) = west.routes
    assert _tiers(route) == [
        (0, "eu-west", TIER_LOCAL, 100),
        (1, "eu-central", TIER_GATEWAY, 100),
        (2, "us-east", TIER_GATEWAY, 100),
        (3, "eu-west", TIER_ACTIVATOR, 100),
    ]
    assert route.main.wakes == "eu-west"
    assert route.main.activator == ACTIVATOR
    # Warm regions have no activator tier at all.
    central = network.gateway("eu-central")
    assert central is not None
    assert all(t.kind != TIER_ACTIVATOR for t in central.routes[0].main.tiers)
    assert central.routes[0].main.wakes == ""


def test_a_forwarding_gateway_wakes_the_nearest_allowed_region() -> None:
    dep = _resolved("eu-only", [{"location": {"continents": ["EU"]}}])
    cold = ColdRegions(
        frozenset({("production", "eu-only", "", r) for r in ("eu-west", "eu-central")}),
        ACTIVATOR,
    )
    network = build_network([dep], REGIONS, GATEWAYS, {}, cold=cold, tls=TLS)
    us = network.gateway("us-east")
    assert us is not None
    (route,) = us.routes
    first = route.main.tiers[0].region
    assert route.main.wakes == first
    assert route.main.tiers[-1].kind == TIER_ACTIVATOR


def test_without_failover_the_activator_comes_right_after_the_cold_region() -> None:
    dep = _resolved("solo", [{"failover": {"disabled": True}}])
    cold = ColdRegions(frozenset({("production", "solo", "", "eu-west")}), ACTIVATOR)
    network = build_network([dep], REGIONS, GATEWAYS, {}, cold=cold, tls=TLS)
    west = network.gateway("eu-west")
    assert west is not None
    assert _tiers(west.routes[0]) == [
        (0, "eu-west", TIER_LOCAL, 100),
        (1, "eu-west", TIER_ACTIVATOR, 100),
    ]


def _activator_tiers(network: NetworkIR) -> dict[str, bool]:
    """Per gateway: does its route of the one deployment end in the activator?"""
    return {
        g.region: any(t.kind == TIER_ACTIVATOR for t in g.routes[0].main.tiers)
        for g in network.gateways
    }


@pytest.mark.parametrize(
    ("activator_host", "gateway_host", "reachable"),
    [
        ("127.0.0.1", "127.0.0.1", True),  # one machine: the default
        ("127.0.0.1", "::1", True),
        ("127.0.0.1", "10.77.0.2", False),  # a gateway elsewhere would dial its own loopback
        ("127.0.0.1", "0.0.0.0", False),  # every address of some host: which one is unknown
        ("10.77.0.1", "10.77.0.2", True),  # exposed with --activator-host
        ("10.77.0.1", "127.0.0.1", True),
    ],
)
def test_a_gateway_reaches_a_loopback_activator_only_on_loopback(
    activator_host: str, gateway_host: str, reachable: bool
) -> None:
    assert activator_reachable(activator_host, gateway_host) is reachable


def test_a_gateway_on_another_host_gets_no_loopback_activator() -> None:
    dep = _resolved("a", [{"failover": {"disabled": True}}])
    everywhere = frozenset(("production", "a", "", r) for r in REGIONS)
    remote = {
        **GATEWAYS,
        "us-east": GatewayAddress("10.77.0.2", 8003, GatewayAddress("10.77.0.2", 9003)),
    }
    on_loopback = ColdRegions(everywhere, activator_endpoint("127.0.0.1", 7001, 7002))
    network = build_network([dep], REGIONS, remote, {}, cold=on_loopback, tls=TLS)
    assert _activator_tiers(network) == {"eu-central": True, "eu-west": True, "us-east": False}
    us = network.gateway("us-east")
    assert us is not None and us.routes[0].main.wakes == ""  # no request waits there
    exposed = ColdRegions(everywhere, activator_endpoint("10.77.0.1", 7001, 7002))
    network = build_network([dep], REGIONS, remote, {}, cold=exposed, tls=TLS)
    assert all(_activator_tiers(network).values())


def test_a_gateway_without_its_certificate_gets_no_activator() -> None:
    """The activator asks for the gateway's mesh certificate: without one (not issued yet, or
    the benchmark-only plain-text peer path) the gateway could not call it."""
    dep = _resolved("a", [{"failover": {"disabled": True}}])
    cold = ColdRegions(frozenset(("production", "a", "", r) for r in REGIONS), ACTIVATOR)
    partly = {r: t for r, t in TLS.items() if r != "eu-west"}
    network = build_network([dep], REGIONS, GATEWAYS, {}, cold=cold, tls=partly)
    assert _activator_tiers(network) == {"eu-central": True, "eu-west": False, "us-east": True}
    plain = build_network([dep], REGIONS, GATEWAYS, {}, cold=cold, tls=TLS, peer_plaintext=True)
    assert not any(_activator_tiers(plain).values())


def test_a_deactivated_deployment_is_routed_to_nothing() -> None:
    dep = replace(_resolved("off"), deactivated=True)
    workers = {"eu-west": [_worker("w-1", "off", S.WORKER_STATE_HEALTHY, 100)]}
    network = build_network([dep], REGIONS, GATEWAYS, workers)
    west = network.gateway("eu-west")
    assert west is not None
    (route,) = west.routes
    assert route.deactivated and route.backends == ()


def test_a_region_a_move_leaves_serves_first_at_home_and_last_everywhere_else() -> None:
    """Moving from us-east to eu-west: us-east keeps serving until eu-west does; no gateway is
    left without it meanwhile, even where failover is disabled."""
    dep = _resolved(
        "mv", [{"location": {"regions": ["eu-west"]}}, {"failover": {"disabled": True}}]
    )
    workers = {
        "eu-west": [_worker("w-1", "mv", S.WORKER_STATE_STARTING, 100)],
        "us-east": [_worker("u-1", "mv", S.WORKER_STATE_HEALTHY, 400)],
    }
    leaving = {dep.key: ("us-east",)}
    network = build_network([dep], REGIONS, GATEWAYS, workers, leaving=leaving)
    routes = {g.region: g.routes[0] for g in network.gateways}
    assert _tiers(routes["eu-west"]) == [
        (0, "eu-west", TIER_LOCAL, 100),
        (1, "us-east", TIER_GATEWAY, 100),
    ]
    assert _tiers(routes["eu-central"]) == [
        (0, "eu-west", TIER_GATEWAY, 100),
        (1, "us-east", TIER_GATEWAY, 100),
    ]
    us = routes["us-east"]
    assert _tiers(us) == [(0, "us-east", TIER_LOCAL, 100), (1, "eu-west", TIER_GATEWAY, 100)]
    # It still serves requests other gateways forward to it, and counts as healthy there.
    assert us.served_here and [e.worker_id for e in us.main.local_endpoints or ()] == ["u-1"]
    assert routes["eu-central"].main.tiers[1].endpoints[0].healthy


def test_a_region_let_go_lists_its_draining_workers_until_they_stop() -> None:
    """Once let go, us-east's workers drain like a replaced version's: listed DRAINING (Envoy
    sends them nothing new, in-flight requests finish) until the drain is confirmed; only its
    own gateway lists them, and it forwards to the new placement."""
    dep = _resolved("mv", [{"location": {"regions": ["eu-west"]}}])
    workers = {
        "eu-west": [_worker("w-1", "mv", S.WORKER_STATE_HEALTHY, 100)],
        "us-east": [_worker("u-1", "mv", S.WORKER_STATE_DRAINING, 400)],
    }
    network = build_network([dep], REGIONS, GATEWAYS, workers)
    routes = {g.region: g.routes[0] for g in network.gateways}
    us = routes["us-east"]
    assert _tiers(us) == [(0, "us-east", TIER_LOCAL, 100), (1, "eu-west", TIER_GATEWAY, 100)]
    assert [(e.worker_id, e.draining) for e in us.main.tiers[0].endpoints] == [("u-1", True)]
    assert us.main.local_endpoints == us.main.tiers[0].endpoints
    assert {t.region for t in routes["eu-central"].main.tiers} == {"eu-west"}


def test_peer_path_of_each_gateway_names_every_known_region() -> None:
    """After a control-plane restart only some agents have reported: each gateway already has
    a TLS socket for every known peer, so its clusters stay the same as the others come back."""
    reported = {name: GATEWAYS[name] for name in list(GATEWAYS)[:1]}
    network = build_network(
        [], REGIONS, reported, {}, tls=TLS, known_regions=[*REGIONS, "asia-east"]
    )
    (gateway,) = network.gateways
    assert (gateway.peer.host, gateway.peer.port) == ("127.0.0.1", 9001)
    assert gateway.peer.tls == TLS[gateway.region] and not gateway.peer.plaintext
    assert gateway.peer.peers == ("asia-east", "eu-central", "us-east")


def test_no_certificate_no_peer_listener() -> None:
    network = build_network(
        [_resolved("a")], REGIONS, GATEWAYS, {}, tls={"eu-west": TLS["eu-west"]}
    )
    peers = {g.region: g.peer for g in network.gateways}
    assert peers["eu-west"].port == 9001 and peers["eu-west"].peers == ("eu-central", "us-east")
    assert peers["us-east"].port == 0 and peers["us-east"].tls is None
    assert peers["us-east"].peers == ()


def test_a_gateway_without_a_peer_address_is_no_failover_target() -> None:
    gateways = {**GATEWAYS, "eu-central": GatewayAddress("127.0.0.1", 8002)}
    network = build_network([_resolved("a")], REGIONS, gateways, {}, tls=TLS)
    route = network.gateway("eu-west").routes[0]  # type: ignore[union-attr]
    assert [t.region for t in route.main.tiers] == ["eu-west", "us-east"]
    assert network.gateway("eu-central").peer.port == 0  # type: ignore[union-attr]


def test_plaintext_peer_path_is_the_explicit_switch_only() -> None:
    network = build_network([], REGIONS, GATEWAYS, {}, peer_plaintext=True)
    for gateway in network.gateways:
        assert gateway.peer.plaintext and gateway.peer.tls is None and gateway.peer.port
    default = build_network([], REGIONS, GATEWAYS, {}, tls=TLS)
    assert not any(g.peer.plaintext for g in default.gateways)
