"""Properties of translate_gateway that golden files do not state outright."""

from __future__ import annotations

import dataclasses

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import health_check_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from controlplane.ir import Backend, DeploymentRoute, Endpoint, GatewayIR, RetrySettings
from controlplane.translate import EnvoyResources, translate_gateway
from controlplane.translate.dump import resources_to_yaml
from controlplane.translate.endpoints import health_status
from controlplane.translate.retries import retry_policy
from controlplane.translate.static_bootstrap import static_bootstrap
from meshline.keys import DeploymentKey
from tests.controlplane.translate.cases import CASES, TWO_ENVIRONMENTS


def _reversed_backend(backend: Backend) -> Backend:
    tiers = tuple(
        dataclasses.replace(t, endpoints=tuple(reversed(t.endpoints))) for t in backend.tiers
    )
    local = backend.local_endpoints
    return dataclasses.replace(
        backend, tiers=tiers, local_endpoints=None if local is None else tuple(reversed(local))
    )


def reversed_everywhere(gateway: GatewayIR) -> GatewayIR:
    """Workers and deployments in reverse; the backend order (own version first) stays."""
    routes = tuple(
        dataclasses.replace(route, backends=tuple(_reversed_backend(b) for b in route.backends))
        for route in reversed(gateway.routes)
    )
    return dataclasses.replace(gateway, routes=routes)


@pytest.mark.parametrize("case", sorted(CASES))
def test_output_does_not_depend_on_input_order(case: str) -> None:
    gateway = CASES[case]
    assert resources_to_yaml(translate_gateway(gateway)) == resources_to_yaml(
        translate_gateway(reversed_everywhere(gateway))
    )


def test_resource_names_and_type_urls() -> None:
    resources = translate_gateway(TWO_ENVIRONMENTS)
    assert list(resources.clusters) == [
        "churn.development.grpc",
        "churn.development.http",
        "churn.development~local.grpc",
        "churn.development~local.http",
        "fraud.production.grpc",
        "fraud.production.http",
        "fraud.production~local.grpc",
        "fraud.production~local.http",
    ]
    assert list(resources.endpoints) == list(resources.clusters)
    assert list(resources.listeners) == ["gateway"]
    assert list(resources.routes) == ["gateway"]
    assert list(resources.extensions) == ["meshline.jwt_authn", "meshline.rate"]
    assert resources.secrets == {}  # no peer path: no TLS, no SDS
    assert list(resources.by_type_url()) == [
        "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
        "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
        "type.googleapis.com/envoy.config.listener.v3.Listener",
        "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
    ]
    assert resources.deployment_keys() == {
        DeploymentKey("development", "churn"),
        DeploymentKey("production", "fraud"),
    }


def test_every_cluster_and_assignment_names_the_route_it_came_from() -> None:
    """What a NACK is attributed with; the shared listener and route table have no owner."""
    resources = translate_gateway(TWO_ENVIRONMENTS)
    assert set(resources.owners) == set(resources.clusters) == set(resources.endpoints)
    assert resources.owners["churn.development~local.http"] == ("development", "churn")
    assert resources.owners["fraud.production.grpc"] == ("production", "fraud")
    assert "gateway" not in resources.owners


def test_repeated_deployment_is_refused() -> None:
    route = DeploymentRoute.local("fraud", "production", ())
    with pytest.raises(ValueError, match=r"fraud\.production"):
        translate_gateway(GatewayIR("eu", "0.0.0.0", 10000, (route, route)))


@pytest.mark.parametrize(
    ("healthy", "draining", "expected"),
    [
        (True, False, health_check_pb2.HEALTHY),
        (False, False, health_check_pb2.UNHEALTHY),
        (True, True, health_check_pb2.DRAINING),
        (False, True, health_check_pb2.DRAINING),
    ],
)
def test_endpoint_health_status(healthy: bool, draining: bool, expected: int) -> None:
    endpoint = Endpoint("w", "10.0.0.1", 1, 2, healthy=healthy, draining=draining)
    assert health_status(endpoint) == expected


def test_retry_policy_leaves_out_unset_limits() -> None:
    policy = retry_policy(RetrySettings(per_try_timeout_s=0.0, backoff_base_s=0.0))
    assert not policy.HasField("per_try_timeout")
    assert not policy.HasField("retry_back_off")
    assert policy.retry_on == (
        "reset,connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes,"
        "retriable-headers"
    )


def test_retry_policy_always_replays_what_the_activator_held() -> None:
    """Retries off still leave the one replay after a cold start; nothing else is retried."""
    policy = retry_policy(RetrySettings(num_retries=0, retry_on=()))
    assert policy.retry_on == "retriable-headers"
    assert policy.num_retries.value == 1
    [header] = policy.retriable_headers
    assert (header.name, header.string_match.exact) == ("x-meshline-activator", "retry")


def test_cluster_ports_follow_protocol() -> None:
    resources = translate_gateway(TWO_ENVIRONMENTS)
    grpc = resources.endpoints["fraud.production.grpc"].endpoints[0].lb_endpoints[0]
    http = resources.endpoints["fraud.production.http"].endpoints[0].lb_endpoints[0]
    assert grpc.endpoint.address.socket_address.port_value == 9000
    assert http.endpoint.address.socket_address.port_value == 8000


def test_static_bootstrap_inlines_eds_and_rds() -> None:
    resources: EnvoyResources = translate_gateway(TWO_ENVIRONMENTS)
    bootstrap = static_bootstrap(resources, admin_port=9901)
    clusters = {c.name: c for c in bootstrap.static_resources.clusters}
    assert set(clusters) == set(resources.clusters)
    for name, cluster in clusters.items():
        assert cluster.type == cluster_pb2.Cluster.STATIC
        assert not cluster.HasField("eds_cluster_config")
        assert cluster.load_assignment == resources.endpoints[name]
    (listener,) = bootstrap.static_resources.listeners
    manager = hcm_pb2.HttpConnectionManager()
    listener.filter_chains[0].filters[0].typed_config.Unpack(manager)
    assert not manager.HasField("rds")
    assert manager.route_config == resources.routes["gateway"]
    # The input is left as it was (still EDS and RDS).
    assert resources.clusters["fraud.production.grpc"].type == cluster_pb2.Cluster.EDS
