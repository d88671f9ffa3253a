"""A route without a retry policy of its own retries by its virtual host's (said once per
virtual host instead of on every route), with a real Envoy: a worker that answers 503 to every
other request fails no request of a deployment with default retries, by path (the route's own
policy) and by `:authority` (its virtual host's); one with retries off is not retried either
way."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from controlplane.ir import DeploymentRoute, GatewayIR, HealthCheckSettings
from controlplane.policy.access import AccessSettings
from controlplane.policy.settings import RetrySettings
from controlplane.translate import translate_gateway
from controlplane.translate.retries import retry_policy
from controlplane.translate.routes import default_retry
from tests.controlplane.translate.envoy_gateway import HOST, Gateway, running_gateway
from tests.controlplane.translate.test_envoy_routing import Upstream, all_healthy
from tests.harness.processes import free_port, managed, wait_until

FAST_CHECKS = HealthCheckSettings(interval_s=0.2, timeout_s=1.0)
NO_RETRIES = RetrySettings(num_retries=0, retry_on=())


def gateway_ir(flaky: Upstream, port: int) -> GatewayIR:
    def route(environment: str, retry: RetrySettings) -> DeploymentRoute:
        return DeploymentRoute.local(
            "fraud",
            environment,
            (flaky.endpoint(),),
            health_check=FAST_CHECKS,
            access=AccessSettings.open(),
            retry=retry,
        )

    return GatewayIR(
        region="local",
        listen_host=HOST,
        listen_port=port,
        routes=(route("production", RetrySettings()), route("development", NO_RETRIES)),
    )


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, GatewayIR]]:
    logs = tmp_path_factory.mktemp("translate-envoy-retries")
    flaky = Upstream("flaky", free_port(), free_port())
    with ExitStack() as stack:
        stack.enter_context(
            managed(
                "upstream-flaky",
                [
                    sys.executable,
                    "-m",
                    "tests.controlplane.translate.translate_upstream",
                    "--name=flaky",
                    f"--grpc-port={flaky.grpc_port}",
                    f"--http-port={flaky.http_port}",
                    "--fail-every-second",
                ],
                logs,
            )
        )
        ir = gateway_ir(flaky, free_port())
        gw = stack.enter_context(running_gateway(ir, logs))
        expected = [
            (f"fraud.{env}.{kind}", port)
            for env in ("production", "development")
            for kind, port in (("grpc", flaky.grpc_port), ("http", flaky.http_port))
        ]
        wait_until(
            lambda: gw.process.alive() and all_healthy(gw.admin_port, expected),
            what="the flaky upstream healthy in envoy",
        )
        yield gw, ir


def _post(gw: Gateway, environment: str, host: str = "") -> int:
    headers = {"content-type": "application/json", "x-meshline-environment": environment}
    if host:
        headers["host"] = host
    request = urllib.request.Request(
        f"http://{gw.address}/v2/models/fraud/infer",
        data=b'{"inputs": []}',
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_each_virtual_host_says_the_policy_of_its_routes_once(
    gateway: tuple[Gateway, GatewayIR],
) -> None:
    """A deployment's `:authority` virtual host holds its policy, its routes none; the default
    virtual host holds the default one (several regions), which neither deployment here has
    (one region, and retries off): their routes there carry their own."""
    _, ir = gateway
    public = translate_gateway(ir).routes[ir.route_config_name]
    hosts = {h.name: h for h in public.virtual_hosts}
    for environment, settings in (("production", RetrySettings()), ("development", NO_RETRIES)):
        host = hosts[f"authority.fraud.{environment}"]
        assert host.retry_policy == retry_policy(settings, across_priorities=False)
        forwarding = [r for r in host.routes if r.HasField("route")]
        assert forwarding and not any(r.route.HasField("retry_policy") for r in forwarding)
    default = hosts["default"]
    assert default.retry_policy == default_retry(local=False)
    forwarding = [r for r in default.routes if r.HasField("route")]
    assert forwarding and all(r.route.HasField("retry_policy") for r in forwarding)


@pytest.mark.parametrize("host", ["", "fraud.production"])
def test_default_retries_replay_what_a_worker_refused(
    gateway: tuple[Gateway, GatewayIR], host: str
) -> None:
    """By path (the route's own policy) and by `:authority` (its virtual host's)."""
    gw, _ = gateway
    assert [_post(gw, "production", host) for _ in range(6)] == [200] * 6


@pytest.mark.parametrize("host", ["", "fraud.development"])
def test_retries_off_replay_nothing(gateway: tuple[Gateway, GatewayIR], host: str) -> None:
    gw, _ = gateway
    assert sorted(_post(gw, "development", host) for _ in range(6)) == [200] * 3 + [503] * 3
