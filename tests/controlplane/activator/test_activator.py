"""The activator's listeners with real gRPC and HTTP clients over mTLS, as gateways call them:
health checks pass, requests are held until their region is ready (then "retry"), or answered
UNAVAILABLE / 503 with the reason and marked so Envoy does not retry them."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from controlplane.activator import (
    Activator,
    ActivatorServer,
    ActivatorTls,
    HoldLimits,
    WakeProblem,
)
from controlplane.server_identity import ServerIdentity
from tests.controlplane.activator.clients import (
    Served,
    World,
    grpc_call,
    http_context,
    https_url,
    mesh,
    served_serial,
)

KEY = ("production", "fraud", "", "eu")
HEADERS = {
    "x-meshline-gateway": "eu",
    "x-meshline-deployment": "fraud",
    "x-meshline-environment": "production",
    "x-meshline-version": "v1",
}


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    world = World(KEY)
    activator = Activator(world.resolve, world.changed)
    server = ActivatorServer(activator, "127.0.0.1", ActivatorTls(mesh().server, mesh().ca))
    await server.start()
    try:
        yield Served(world, activator, server)
    finally:
        await server.stop()


async def _release_when_held(activator: Activator, world: World) -> None:
    while not activator.held():
        await asyncio.sleep(0.01)
    assert activator.held() == {KEY: 1}
    world.ready = True
    activator.update(lambda gateway, key: world.ready and key == KEY, {})


async def test_grpc_request_is_held_until_ready_then_told_to_retry(served: Served) -> None:
    releaser = asyncio.create_task(_release_when_held(served.activator, served.world))
    error = await grpc_call(served.server, HEADERS)
    await releaser
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert ("x-meshline-activator", "retry") in tuple(error.trailing_metadata())
    assert served.world.changes >= 1  # the demand woke the reconciler
    assert served.activator.held() == {}


async def test_http_request_is_held_until_ready_then_told_to_retry(
    served: Served, tmp_path: Path
) -> None:
    releaser = asyncio.create_task(_release_when_held(served.activator, served.world))
    async with aiohttp.ClientSession() as http:
        url = https_url(served.server, "/v2/models/fraud/infer")
        async with http.post(url, data=b"{}", headers=HEADERS, ssl=http_context(tmp_path)) as reply:
            assert reply.status == 503
            assert reply.headers["x-meshline-activator"] == "retry"
    await releaser


async def test_the_region_held_for_is_the_certificates(served: Served) -> None:
    """No x-meshline-gateway header: the request counts for the region its certificate names."""
    headers = {k: v for k, v in HEADERS.items() if k != "x-meshline-gateway"}
    seen: list[list[tuple[str, object]]] = []

    async def release() -> None:
        while not served.activator.held():
            await asyncio.sleep(0.01)
        seen.append(list(served.activator.waiting()))
        served.activator.update(lambda gateway, key: True, {})

    releaser = asyncio.create_task(release())
    error = await grpc_call(served.server, headers, region="eu")
    await releaser
    assert ("x-meshline-activator", "retry") in tuple(error.trailing_metadata())
    assert seen == [[("eu", KEY)]]
    assert served.world.gateways == ["eu"]


async def test_a_cold_start_longer_than_its_timeout_gets_the_reason_unretried(
    served: Served, tmp_path: Path
) -> None:
    served.world.timeout_s = 0.2
    served.activator.update(lambda gateway, key: False, {KEY: WakeProblem("worker w1: exited")})
    error = await grpc_call(served.server, HEADERS)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "region 'eu'" in error.details()
    assert "cold_start_timeout 0.2 s" in error.details()
    assert "worker w1: exited; it keeps starting, retry shortly" in error.details()
    trailers = dict(error.trailing_metadata())
    assert trailers.get("x-envoy-overloaded") == "true"
    assert "x-meshline-activator" not in trailers
    async with aiohttp.ClientSession() as http:
        url = https_url(served.server, "/v2/models/fraud/infer")
        async with http.post(url, data=b"{}", headers=HEADERS, ssl=http_context(tmp_path)) as reply:
            assert reply.status == 503
            assert "cold_start_timeout" in (await reply.json())["error"]
            assert reply.headers["x-envoy-overloaded"] == "true"


async def test_a_wake_that_crash_looped_says_a_user_must_act(served: Served) -> None:
    served.world.timeout_s = 0.2
    failed = WakeProblem("the last cold start failed: worker w1 exited with code 1", True)
    served.activator.update(lambda gateway, key: False, {KEY: failed})
    error = await grpc_call(served.server, HEADERS)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details().endswith(
        "the last cold start failed: worker w1 exited with code 1; a user must act "
        "(meshline get deployment fraud -e production)"
    ), error.details()
    assert "retry shortly" not in error.details()


async def test_envoys_expected_timeout_shortens_the_hold(served: Served) -> None:
    error = await grpc_call(served.server, {**HEADERS, "x-envoy-expected-rq-timeout-ms": "400"})
    assert "cold_start_timeout" in error.details()  # answered before Envoy gave up (0.4 s)


async def test_a_request_nothing_routes_is_refused_at_once(served: Served) -> None:
    error = await grpc_call(served.server, {**HEADERS, "x-meshline-deployment": "other"})
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "no route for other" in error.details()
    assert served.activator.held() == {}


async def test_health_checks_pass_on_both_listeners(served: Served, tmp_path: Path) -> None:
    channel_credentials = mesh().grpc_credentials("eu")
    target = f"127.0.0.1:{served.server.grpc_port}"
    async with grpc.aio.secure_channel(target, channel_credentials) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    url = https_url(served.server, "/v2/health/ready")
    async with aiohttp.ClientSession() as http, http.get(url, ssl=http_context(tmp_path)) as r:
        assert r.status == 200


async def test_a_grpc_request_message_is_never_read(served: Served) -> None:
    """8 MiB, twice what a grpc server takes by default: had the activator read it, the call
    would end RESOURCE_EXHAUSTED; it is held and told to retry without ever reading it."""
    releaser = asyncio.create_task(_release_when_held(served.activator, served.world))
    try:
        error = await grpc_call(served.server, HEADERS, message=b"\x0a" * (8 * 1024 * 1024))
    finally:
        released = releaser.done()
        releaser.cancel()
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
    assert ("x-meshline-activator", "retry") in tuple(error.trailing_metadata())
    assert released


async def test_a_rest_request_body_is_never_read(served: Served, tmp_path: Path) -> None:
    """A request that announces 1 GiB and sends 5 bytes of it: held, answered "retry" without
    waiting for the rest (it never comes), and its connection closed, not drained."""
    releaser = asyncio.create_task(_release_when_held(served.activator, served.world))
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", served.server.http_port, ssl=http_context(tmp_path), server_hostname=None
    )
    head = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
    writer.write(
        (
            "POST /v2/models/fraud/infer HTTP/1.1\r\nhost: fraud.production\r\n"
            f'{head}content-length: {1024**3}\r\n\r\n{{"in'
        ).encode()
    )
    try:
        await writer.drain()
        # To the server's close; a server that waited for the body would never answer.
        answer = await asyncio.wait_for(reader.read(), 30)
    finally:
        releaser.cancel()
        writer.close()
    status_line, _, rest = answer.decode(errors="replace").partition("\r\n")
    assert status_line == "HTTP/1.1 503 Service Unavailable", answer
    assert "x-meshline-activator: retry" in rest.lower()


# -- who may call ------------------------------------------------------------------------


def _untouched(served: Served) -> None:
    """Nothing was held and nothing asked the reconciler to wake a region."""
    assert served.activator.held() == {}
    assert served.world.changes == 0 and served.world.gateways == []


async def test_a_plain_text_client_gets_no_answer(served: Served) -> None:
    target = f"127.0.0.1:{served.server.grpc_port}"
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(b"\x0a\x05fraud", metadata=tuple(HEADERS.items()), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "retry" not in str(caught.value.trailing_metadata())
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{served.server.http_port}/v2/models/fraud/infer"
        with pytest.raises(aiohttp.ClientError):
            async with http.post(url, data=b"{}", headers=HEADERS) as reply:
                await reply.read()
    _untouched(served)


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate"])
async def test_a_tls_client_without_a_mesh_certificate_gets_no_answer(
    served: Served, tmp_path: Path, who: str
) -> None:
    region = None if who == "no certificate" else "eu"
    signer = mesh().ca if region is None else mesh().stranger
    error = await grpc_call(served.server, HEADERS, region=region, signer=signer)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "retry" not in str(error.trailing_metadata())
    async with aiohttp.ClientSession() as http:
        url = https_url(served.server, "/v2/models/fraud/infer")
        context = http_context(tmp_path, region=region, signer=signer)
        with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
            async with http.post(url, data=b"{}", headers=HEADERS, ssl=context) as reply:
                await reply.read()
    _untouched(served)


async def test_a_mesh_certificate_of_no_region_is_denied(served: Served, tmp_path: Path) -> None:
    error = await grpc_call(served.server, HEADERS, region="")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "names spiffe://meshline/controlplane, not a region" in error.details()
    async with aiohttp.ClientSession() as http:
        url = https_url(served.server, "/v2/models/fraud/infer")
        context = http_context(tmp_path, region="")
        async with http.post(url, data=b"{}", headers=HEADERS, ssl=context) as reply:
            assert reply.status == 403
            assert "not a region" in (await reply.json())["error"]
    _untouched(served)


async def test_a_header_naming_another_region_is_denied(served: Served, tmp_path: Path) -> None:
    headers = {**HEADERS, "x-meshline-gateway": "us"}
    error = await grpc_call(served.server, headers, region="eu")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == (
        "x-meshline-gateway names region 'us', but the client certificate is region 'eu''s"
    )
    async with aiohttp.ClientSession() as http:
        url = https_url(served.server, "/v2/models/fraud/infer")
        async with http.post(url, data=b"{}", headers=headers, ssl=http_context(tmp_path)) as r:
            assert r.status == 403
            assert "names region 'us'" in (await r.json())["error"]
    _untouched(served)


# -- how many are held ---------------------------------------------------------------------


async def test_over_the_hold_limits_requests_are_answered_at_once(tmp_path: Path) -> None:
    """Two held from eu fill eu's share; eu's third is answered while they still wait, naming
    the deployment and the limit; us may still add one, then the total is full too."""
    world = World(KEY)
    world.timeout_s = 60.0  # the held ones wait until released, far past the assertions
    activator = Activator(world.resolve, world.changed, limits=HoldLimits(per_gateway=2, total=3))
    server = ActivatorServer(activator, "127.0.0.1", ActivatorTls(mesh().server, mesh().ca))
    await server.start()
    try:
        eu_headers = HEADERS
        us_headers = {**HEADERS, "x-meshline-gateway": "us"}
        held = [asyncio.create_task(grpc_call(server, eu_headers, region="eu")) for _ in range(2)]
        while activator.held_now("eu").from_gateway < 2:
            await asyncio.sleep(0.01)

        error = await grpc_call(server, eu_headers, region="eu")
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert error.details() == (
            "deployment 'fraud' (environment 'production') is waking from zero and the "
            "activator already holds 2 requests from gateway 'eu' (at most 2 per gateway); "
            "retry shortly"
        )
        assert dict(error.trailing_metadata()).get("x-envoy-overloaded") == "true"
        async with aiohttp.ClientSession() as http:
            url = https_url(server, "/v2/models/fraud/infer")
            async with http.post(
                url, data=b"{}", headers=eu_headers, ssl=http_context(tmp_path)
            ) as reply:
                assert reply.status == 503
                assert "at most 2 per gateway" in (await reply.json())["error"]
                assert reply.headers["x-envoy-overloaded"] == "true"

        held.append(asyncio.create_task(grpc_call(server, us_headers, region="us")))
        while activator.held_now("us").total < 3:
            await asyncio.sleep(0.01)
        error = await grpc_call(server, us_headers, region="us")
        assert "already holds 3 requests in all (at most 3)" in error.details()
        assert not any(task.done() for task in held)  # answered while the others still wait

        activator.update(lambda gateway, key: True, {})
        for answer in await asyncio.gather(*held):
            assert ("x-meshline-activator", "retry") in tuple(answer.trailing_metadata())
    finally:
        await server.stop()


# -- the certificate it serves ---------------------------------------------------------------


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


async def test_both_listeners_serve_the_control_planes_renewed_certificate(
    tmp_path: Path,
) -> None:
    """The certificate the control plane renews while it runs (ServerIdentity, two thirds into
    its life): gRPC is served it at the next handshake, REST once a request (here a health
    check) finds it renewed. The renewal clock starts two hours back, so that the renewed
    certificate is valid at the real time TLS checks."""
    clock = Clock(datetime.now(UTC) - timedelta(hours=2, minutes=10))
    identity = ServerIdentity(mesh().ca, ["127.0.0.1"], clock=clock, lifetime=timedelta(hours=3))
    world = World(KEY)
    server = ActivatorServer(
        Activator(world.resolve, world.changed), "127.0.0.1", ActivatorTls(identity, mesh().ca)
    )
    await server.start()
    try:
        first = identity.current.facts.serial
        assert await served_serial(server.grpc_port, tmp_path) == first
        assert await served_serial(server.http_port, tmp_path) == first
        clock.now = datetime.now(UTC)  # past two thirds of its life
        renewed = await served_serial(server.grpc_port, tmp_path)
        assert renewed != first and renewed == identity.current.facts.serial
        async with aiohttp.ClientSession() as http:
            url = https_url(server, "/v2/health/ready")
            async with http.get(url, ssl=http_context(tmp_path)) as reply:
                assert reply.status == 200
        assert await served_serial(server.http_port, tmp_path) == renewed
    finally:
        await server.stop()


async def test_a_wake_waiting_for_room_says_it_starts_once_there_is_room(served: Served) -> None:
    served.world.timeout_s = 0.2
    full = WakeProblem(
        "region 'eu' has 0 MiB free of its 1.0 GiB memory budget", waits_for_room=True
    )
    served.activator.update(lambda gateway, key: False, {KEY: full})
    error = await grpc_call(served.server, HEADERS)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details().endswith(
        "region 'eu' has 0 MiB free of its 1.0 GiB memory budget; it starts once the region "
        "has room, retry later"
    ), error.details()
