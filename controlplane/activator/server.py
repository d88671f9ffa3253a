"""The activator's two listeners: gRPC (HTTP/2, for `.grpc` clusters) and REST (HTTP/1.1).

Both answer the gateways' health checks as serving and hold every inference request. The
answer to a held request is never a model result: either "retry" (header RETRY_HEADER, which
the routes retry on, so Envoy replays the request to the now-ready worker) or the cold-start
timeout as UNAVAILABLE / 503 marked so that Envoy passes it to the client unretried.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from controlplane.activator.holds import Activator, HoldRequest, HoldResult
from meshline.bind import is_loopback
from meshline.v1 import agent_pb2
from meshline.wire import (
    ACTIVATOR_RETRY_HEADER,
    ACTIVATOR_RETRY_VALUE,
    DEPLOYMENT_HEADER,
    ENVIRONMENT_HEADER,
    GATEWAY_REGION_HEADER,
    VERSION_HEADER,
)

log = logging.getLogger(__name__)

# Envoy never retries a response carrying this header (RetryPolicy: "rate limited" or
# overloaded responses), whatever the route's retry_on says: the timeout reaches the client.
NO_RETRY_HEADERS = (("x-envoy-overloaded", "true"), ("x-envoy-ratelimited", "true"))
HEALTH_PATHS = ("/v2/health/ready", "/v2/health/live")


def activator_out_of_reach(activator_host: str, hello: agent_pb2.AgentHello) -> str | None:
    """A warning when the activator listens on loopback but this region's gateway does not:
    a gateway on another host cannot reach it, so its cold deployments could never wake."""
    gateway_host = hello.gateway_address.rsplit(":", 1)[0]
    if not is_loopback(activator_host) or is_loopback(gateway_host):
        return None
    return (
        f"region {hello.region}'s gateway listens on {hello.gateway_address}, but the activator "
        f"on {activator_host}: if that gateway runs on another host, its scale-to-zero "
        "deployments cannot wake (start the control plane with --activator-host set to an "
        "address of this host that the gateway reaches)"
    )


def _hold_request(headers: Mapping[str, str]) -> HoldRequest:
    try:
        timeout_s = int(headers.get("x-envoy-expected-rq-timeout-ms", "0")) / 1000
    except ValueError:
        timeout_s = 0.0
    return HoldRequest(
        gateway=headers.get(GATEWAY_REGION_HEADER, ""),
        deployment=headers.get(DEPLOYMENT_HEADER, ""),
        environment=headers.get(ENVIRONMENT_HEADER, ""),
        version=headers.get(VERSION_HEADER, ""),
        envoy_timeout_s=timeout_s,
    )


class _HoldAnyMethod(grpc.GenericRpcHandler):
    """Every gRPC method but health: read the request, hold it, answer retry or the reason."""

    def __init__(self, activator: Activator) -> None:
        self._activator = activator

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler | None:
        return grpc.unary_unary_rpc_method_handler(
            self._unary, request_deserializer=None, response_serializer=None
        )

    async def _unary(self, request: bytes, context: Any) -> bytes:
        headers = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        result = await self._activator.hold(_hold_request(headers))
        if result.retry:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                "cold start over: retry",
                trailing_metadata=((ACTIVATOR_RETRY_HEADER, ACTIVATOR_RETRY_VALUE),),
            )
        await context.abort(
            grpc.StatusCode.UNAVAILABLE, result.message, trailing_metadata=NO_RETRY_HEADERS
        )
        raise AssertionError("abort returned")


class ActivatorServer:
    def __init__(self, activator: Activator, host: str) -> None:
        self.activator = activator
        self.host = host
        self.grpc_port = 0
        self.http_port = 0
        self._grpc: grpc.aio.Server | None = None
        self._runner: web.AppRunner | None = None

    async def start(self, grpc_port: int = 0, http_port: int = 0) -> None:
        server = grpc.aio.server()
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        server.add_generic_rpc_handlers((_HoldAnyMethod(self.activator),))
        self.grpc_port = server.add_insecure_port(f"{self.host}:{grpc_port}")
        await server.start()
        await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        self._grpc = server
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._http)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, http_port)
        await site.start()
        self.http_port = _bound_port(site)
        log.info("activator on %s: gRPC %d, REST %d", self.host, self.grpc_port, self.http_port)

    async def _http(self, request: web.Request) -> web.StreamResponse:
        if request.path in HEALTH_PATHS:
            return web.json_response({"ready": True})
        await request.read()  # the client sent it all; Envoy keeps its own copy to replay
        result = await self.activator.hold(_hold_request(request.headers))
        return _http_answer(result)

    async def stop(self) -> None:
        if self._grpc is not None:
            await self._grpc.stop(grace=0.5)
        if self._runner is not None:
            await self._runner.cleanup()


def _http_answer(result: HoldResult) -> web.Response:
    if result.retry:
        headers = {ACTIVATOR_RETRY_HEADER: ACTIVATOR_RETRY_VALUE}
    else:
        headers = dict(NO_RETRY_HEADERS)
    return web.Response(
        status=503,
        body=json.dumps({"error": result.message}),
        content_type="application/json",
        headers=headers,
    )


def _bound_port(site: web.TCPSite) -> int:
    server: Any = site._server  # aiohttp keeps the asyncio server here; port 0 = "pick one"
    return int(server.sockets[0].getsockname()[1])
