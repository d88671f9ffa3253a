"""The routing key (docs/architecture.md) with a real Envoy running the generated config.

No control plane: static_bootstrap inlines the resources. Two test upstreams (see
translate_upstream.py) stand in for workers: `prod` serves fraud/production, `dev` serves
fraud/development and is also listed, DRAINING, under fraud/production, where it must never
be picked.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from controlplane.ir import DeploymentRoute, Endpoint, GatewayIR, HealthCheckSettings
from controlplane.policy.access import AccessSettings
from meshline.inference import grpc_service_pb2 as pb
from meshline.inference import grpc_service_pb2_grpc as pb_grpc
from tests.controlplane.translate.envoy_gateway import HOST, Gateway, running_gateway
from tests.harness.processes import free_port, managed, wait_until

FAST_CHECKS = HealthCheckSettings(interval_s=0.2, timeout_s=1.0)


@dataclass(frozen=True)
class Upstream:
    name: str
    grpc_port: int
    http_port: int

    def endpoint(self, draining: bool = False) -> Endpoint:
        return Endpoint(self.name, HOST, self.grpc_port, self.http_port, draining=draining)


# Routing, not access, is under test here (tests/controlplane/translate/test_envoy_access.py
# covers who may call): anyone may.
OPEN = AccessSettings.open()


def gateway_ir(prod: Upstream, dev: Upstream, port: int) -> GatewayIR:
    return GatewayIR(
        region="local",
        listen_host=HOST,
        listen_port=port,
        routes=(
            DeploymentRoute.local(
                "fraud",
                "production",
                (prod.endpoint(), dev.endpoint(draining=True)),
                health_check=FAST_CHECKS,
                access=OPEN,
            ),
            DeploymentRoute.local(
                "fraud",
                "development",
                (dev.endpoint(),),
                health_check=FAST_CHECKS,
                access=OPEN,
            ),
        ),
    )


def all_healthy(admin_port: int, expected: list[tuple[str, int]]) -> bool:
    """Admin /clusters lists `cluster::host:port::health_flags::healthy` once a host passed."""
    with urllib.request.urlopen(f"http://{HOST}:{admin_port}/clusters", timeout=2) as response:
        text = response.read().decode()
    return all(
        f"{cluster}::{HOST}:{port}::health_flags::healthy" in text for cluster, port in expected
    )


def all_routes_answer(gw: Gateway) -> bool:
    for environment in ("production", "development"):
        metadata = (("x-meshline-deployment", "fraud"), ("x-meshline-environment", environment))
        model_infer(gw, metadata)
        status, _ = http_post(gw, "/v2/models/fraud/infer", {"x-meshline-environment": environment})
        if status != 200:
            return False
    return True


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    logs = tmp_path_factory.mktemp("translate-envoy")
    prod = Upstream("prod", free_port(), free_port())
    dev = Upstream("dev", free_port(), free_port())
    port = free_port()
    with ExitStack() as stack:
        for upstream in (prod, dev):
            stack.enter_context(
                managed(
                    f"upstream-{upstream.name}",
                    [
                        sys.executable,
                        "-m",
                        "tests.controlplane.translate.translate_upstream",
                        f"--name={upstream.name}",
                        f"--grpc-port={upstream.grpc_port}",
                        f"--http-port={upstream.http_port}",
                    ],
                    logs,
                )
            )
        gw = stack.enter_context(running_gateway(gateway_ir(prod, dev, port), logs))
        expected = [
            ("fraud.production.grpc", prod.grpc_port),
            ("fraud.production.http", prod.http_port),
            ("fraud.development.grpc", dev.grpc_port),
            ("fraud.development.http", dev.http_port),
        ]
        wait_until(
            lambda: gw.process.alive() and all_healthy(gw.admin_port, expected),
            what="upstreams healthy in envoy",
        )
        # The admin page can say healthy a moment before the worker thread's load balancer
        # picks the host (seen with a DRAINING host beside it), so also wait for real answers.
        wait_until(lambda: all_routes_answer(gw), what="every cluster answering through envoy")
        yield gw


def model_infer(
    gw: Gateway,
    metadata: tuple[tuple[str, str], ...] = (),
    authority: str | None = None,
) -> pb.ModelInferResponse:
    options = [("grpc.default_authority", authority)] if authority else []
    with grpc.insecure_channel(gw.address, options=options) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        request = pb.ModelInferRequest(model_name="fraud", id="req-1")
        response: pb.ModelInferResponse = stub.ModelInfer(request, metadata=metadata, timeout=10)
        return response


def grpc_error(gw: Gateway, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        model_infer(gw, metadata)
    return caught.value


def http_post(
    gw: Gateway, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """POST a small JSON body; (status, JSON answer), also for error statuses."""
    request = urllib.request.Request(
        f"http://{gw.address}{path}",
        data=b'{"inputs": []}',
        headers={"content-type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read().decode(errors="replace")
        if error.headers.get_content_type() != "application/json":
            return error.code, {"error": body}  # e.g. Envoy's own "no healthy upstream"
        return error.code, json.loads(body)


def upstream_of(response: pb.ModelInferResponse) -> str:
    return response.parameters["upstream"].string_param


def test_grpc_by_header_defaults_to_production(gateway: Gateway) -> None:
    response = model_infer(gateway, (("x-meshline-deployment", "fraud"),))
    assert response.model_name == "fraud"
    assert response.id == "req-1"
    assert upstream_of(response) == "prod"
    assert response.parameters["x-meshline-environment"].string_param == "production"


def test_grpc_environment_header_selects_environment(gateway: Gateway) -> None:
    metadata = (("x-meshline-deployment", "fraud"), ("x-meshline-environment", "development"))
    assert upstream_of(model_infer(gateway, metadata)) == "dev"
    metadata = (("x-meshline-deployment", "fraud"), ("x-meshline-environment", "production"))
    assert upstream_of(model_infer(gateway, metadata)) == "prod"


@pytest.mark.parametrize(
    ("authority", "upstream"),
    [("fraud.development", "dev"), ("fraud.production", "prod"), ("fraud.development:443", "dev")],
)
def test_grpc_by_authority(gateway: Gateway, authority: str, upstream: str) -> None:
    response = model_infer(gateway, authority=authority)
    assert upstream_of(response) == upstream
    assert response.parameters["x-meshline-deployment"].string_param == "fraud"


def test_draining_endpoint_gets_no_new_requests(gateway: Gateway) -> None:
    metadata = (("x-meshline-deployment", "fraud"),)
    answered = {upstream_of(model_infer(gateway, metadata)) for _ in range(8)}
    assert answered == {"prod"}
    answered = {http_post(gateway, "/v2/models/fraud/infer")[1]["upstream"] for _ in range(8)}
    assert answered == {"prod"}


def test_http_by_path(gateway: Gateway) -> None:
    status, body = http_post(gateway, "/v2/models/fraud/infer")
    assert status == 200
    assert body == {
        "model_name": "fraud",
        "upstream": "prod",
        "x-meshline-deployment": "fraud",
        "x-meshline-environment": "production",
    }


def test_http_environment_header_selects_environment(gateway: Gateway) -> None:
    status, body = http_post(
        gateway, "/v2/models/fraud/infer", {"x-meshline-environment": "development"}
    )
    assert (status, body["upstream"]) == (200, "dev")


def test_http_unknown_deployment_is_404_naming_it(gateway: Gateway) -> None:
    status, body = http_post(gateway, "/v2/models/nope/infer")
    assert status == 404
    assert "'nope'" in body["error"] and "'production'" in body["error"]


def test_http_unknown_environment_is_404_naming_it(gateway: Gateway) -> None:
    status, body = http_post(gateway, "/v2/models/fraud/infer", {"x-meshline-environment": "qa"})
    assert status == 404
    assert "'fraud'" in body["error"] and "'qa'" in body["error"]


def test_http_path_prefix_needs_a_separator(gateway: Gateway) -> None:
    status, body = http_post(gateway, "/v2/models/fraudster/infer")
    assert status == 404
    assert "'fraudster'" in body["error"]


def test_http_unknown_path_is_404(gateway: Gateway) -> None:
    status, body = http_post(gateway, "/somewhere")
    assert status == 404
    assert "/somewhere" in body["error"]


def test_grpc_unknown_deployment_is_not_found_naming_it(gateway: Gateway) -> None:
    error = grpc_error(gateway, (("x-meshline-deployment", "nope"),))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "'nope'" in (error.details() or "")


def test_grpc_unknown_environment_is_not_found_naming_it(gateway: Gateway) -> None:
    error = grpc_error(
        gateway, (("x-meshline-deployment", "fraud"), ("x-meshline-environment", "qa"))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "'qa'" in (error.details() or "")


def test_grpc_without_deployment_is_not_found_with_a_hint(gateway: Gateway) -> None:
    error = grpc_error(gateway)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "x-meshline-deployment" in (error.details() or "")


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready"])
def test_gateway_answers_its_own_health(gateway: Gateway, path: str) -> None:
    with urllib.request.urlopen(f"http://{gateway.address}{path}", timeout=5) as response:
        assert response.status == 200
