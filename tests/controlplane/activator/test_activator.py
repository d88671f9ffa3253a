"""The activator's listeners with real gRPC and HTTP clients: health checks pass, requests are
held until their region is ready (then "retry"), or answered UNAVAILABLE / 503 with the reason
and marked so Envoy does not retry them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from controlplane.activator import (
    Activator,
    ActivatorServer,
    HoldRequest,
    HoldTarget,
    WakeProblem,
)

KEY = ("production", "fraud", "", "eu")
HEADERS = {
    "x-meshline-gateway": "eu",
    "x-meshline-deployment": "fraud",
    "x-meshline-environment": "production",
    "x-meshline-version": "v1",
}


class World:
    """What the reconciler would answer: targets per gateway, and a switch for readiness."""

    def __init__(self) -> None:
        self.ready = False
        self.changes = 0
        self.timeout_s = 5.0

    def resolve(self, request: HoldRequest) -> HoldTarget | str:
        if request.deployment != "fraud":
            return f"no route for {request.deployment}"
        return HoldTarget(KEY, self.timeout_s)

    def changed(self) -> None:
        self.changes += 1


Served = tuple[World, Activator, ActivatorServer]


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    world = World()
    activator = Activator(world.resolve, world.changed)
    server = ActivatorServer(activator, "127.0.0.1")
    await server.start()
    try:
        yield world, activator, server
    finally:
        await server.stop()


async def _grpc_call(server: ActivatorServer, headers: dict[str, str]) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(b"\x0a\x05fraud", metadata=tuple(headers.items()), timeout=10)
    return caught.value


async def _release_when_held(activator: Activator, world: World) -> None:
    while not activator.held():
        await asyncio.sleep(0.01)
    assert activator.held() == {KEY: 1}
    world.ready = True
    activator.update(lambda gateway, key: world.ready and key == KEY, {})


async def test_grpc_request_is_held_until_ready_then_told_to_retry(served: Served) -> None:
    world, activator, server = served
    releaser = asyncio.create_task(_release_when_held(activator, world))
    error = await _grpc_call(server, HEADERS)
    await releaser
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert ("x-meshline-activator", "retry") in tuple(error.trailing_metadata())
    assert world.changes >= 1  # the demand woke the reconciler
    assert activator.held() == {}


async def test_http_request_is_held_until_ready_then_told_to_retry(served: Served) -> None:
    world, activator, server = served
    releaser = asyncio.create_task(_release_when_held(activator, world))
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{server.http_port}/v2/models/fraud/infer"
        async with http.post(url, data=b"{}", headers=HEADERS) as reply:
            assert reply.status == 503
            assert reply.headers["x-meshline-activator"] == "retry"
    await releaser


async def test_a_cold_start_longer_than_its_timeout_gets_the_reason_unretried(
    served: Served,
) -> None:
    world, activator, server = served
    world.timeout_s = 0.2
    activator.update(lambda gateway, key: False, {KEY: WakeProblem("worker w1: exited")})
    error = await _grpc_call(server, HEADERS)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "region 'eu'" in error.details()
    assert "cold_start_timeout 0.2 s" in error.details()
    assert "worker w1: exited; it keeps starting, retry shortly" in error.details()
    trailers = dict(error.trailing_metadata())
    assert trailers.get("x-envoy-overloaded") == "true"
    assert "x-meshline-activator" not in trailers
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{server.http_port}/v2/models/fraud/infer"
        async with http.post(url, data=b"{}", headers=HEADERS) as reply:
            assert reply.status == 503
            assert "cold_start_timeout" in (await reply.json())["error"]
            assert reply.headers["x-envoy-overloaded"] == "true"


async def test_a_wake_that_crash_looped_says_a_user_must_act(served: Served) -> None:
    world, activator, server = served
    world.timeout_s = 0.2
    failed = WakeProblem("the last cold start failed: worker w1 exited with code 1", True)
    activator.update(lambda gateway, key: False, {KEY: failed})
    error = await _grpc_call(server, HEADERS)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details().endswith(
        "the last cold start failed: worker w1 exited with code 1; a user must act "
        "(meshline get deployment fraud -e production)"
    ), error.details()
    assert "retry shortly" not in error.details()


async def test_envoys_expected_timeout_shortens_the_hold(served: Served) -> None:
    _, _, server = served
    error = await _grpc_call(server, {**HEADERS, "x-envoy-expected-rq-timeout-ms": "400"})
    assert "cold_start_timeout" in error.details()  # answered before Envoy gave up (0.4 s)


async def test_a_request_nothing_routes_is_refused_at_once(served: Served) -> None:
    _, activator, server = served
    error = await _grpc_call(server, {**HEADERS, "x-meshline-deployment": "other"})
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "no route for other" in error.details()
    assert activator.held() == {}


async def test_health_checks_pass_on_both_listeners(served: Served) -> None:
    _, _, server = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    url = f"http://127.0.0.1:{server.http_port}/v2/health/ready"
    async with aiohttp.ClientSession() as http, http.get(url) as reply:
        assert reply.status == 200
