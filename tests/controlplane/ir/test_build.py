"""build_network: placed deployments + agent reports → one GatewayIR per reporting region."""

from __future__ import annotations

from controlplane.ir.build import GatewayAddress, PlacedDeployment, build_network
from meshline.v1 import agent_pb2

S = agent_pb2.WorkerState


def _worker(
    wid: str, dep: str, state: int, port: int, env: str = "production"
) -> agent_pb2.WorkerReport:
    return agent_pb2.WorkerReport(
        worker_id=wid,
        deployment=dep,
        environment=env,
        revision="r1",
        grpc_address=f"127.0.0.1:{port}",
        http_address=f"127.0.0.1:{port + 1}",
        state=S.ValueType(state),
    )


def test_routes_only_in_placed_regions_with_endpoint_states() -> None:
    deps = [
        PlacedDeployment("a", "production", ("eu", "us"), 2),
        PlacedDeployment("b", "staging", ("us",), 1),
    ]
    gateways = {"eu": GatewayAddress("127.0.0.1", 8000), "us": GatewayAddress("127.0.0.1", 9000)}
    workers = {
        "eu": [
            _worker("eu-a-2", "a", S.WORKER_STATE_STARTING, 100),
            _worker("eu-a-1", "a", S.WORKER_STATE_HEALTHY, 200),
        ],
        "us": [
            _worker("us-a-1", "a", S.WORKER_STATE_DRAINING, 300),
            _worker("us-b-1", "b", S.WORKER_STATE_HEALTHY, 400, env="staging"),
        ],
    }
    network = build_network(deps, gateways, workers)
    eu = network.gateway("eu")
    us = network.gateway("us")
    assert eu is not None and us is not None
    assert eu.listen_port == 8000
    assert [r.key for r in eu.routes] == ["a.production"]
    eu_endpoints = eu.routes[0].endpoints
    assert [(e.worker_id, e.healthy, e.draining) for e in eu_endpoints] == [
        ("eu-a-1", True, False),
        ("eu-a-2", False, False),
    ]
    assert eu_endpoints[0].grpc_port == 200 and eu_endpoints[0].http_port == 201
    assert [r.key for r in us.routes] == ["a.production", "b.staging"]
    assert [(e.worker_id, e.draining) for e in us.routes[0].endpoints] == [("us-a-1", True)]


def test_a_region_without_gateway_gets_no_config() -> None:
    deps = [PlacedDeployment("a", "production", ("eu", "us"), 1)]
    network = build_network(deps, {"eu": GatewayAddress.parse("127.0.0.1:8000")}, {})
    assert [g.region for g in network.gateways] == ["eu"]
    assert network.gateway("eu") is not None
    assert network.gateway("eu").routes[0].endpoints == ()  # type: ignore[union-attr]
