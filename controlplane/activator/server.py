"""The activator's two listeners: gRPC (HTTP/2, for `.grpc` clusters) and REST (HTTP/1.1).

Both are mutual TLS (`tls.py`): only a gateway of the mesh, showing its region's certificate,
gets a connection, and the region its requests count for is the one that certificate names
(`callers.py`). Both answer the gateways' health checks as serving and hold every inference
request. The answer to a held request is never a model result: either "retry" (header
RETRY_HEADER, which the routes retry on, so Envoy replays the request to the now-ready worker)
or the cold-start timeout (or a full hold, `limits.py`) as UNAVAILABLE / 503 marked so that
Envoy passes it to the client unretried.

A held request's body is never read: Envoy keeps its own copy for the replay. The REST listener
leaves it in the socket (aiohttp stops reading at its buffer's high-water mark) and closes a
connection whose body did not all arrive; the gRPC handler never takes the message from its
stream, whose flow-control window bounds what is buffered.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from controlplane.activator.callers import CallerRefusal, caller_gateway
from controlplane.activator.holds import Activator, HoldRequest, HoldResult
from controlplane.activator.tls import ActivatorTls, HttpTls, auth_context_of, verified_caller
from controlplane.ir.build import activator_reachable
from controlplane.pki.peer import AuthContext, PeerUnauthenticatedError
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
HTTP_READ_BUFFER = 64 * 1024


def activator_out_of_reach(activator_host: str, hello: agent_pb2.AgentHello) -> str | None:
    """A warning when the activator listens on loopback but this region's gateway does not:
    that gateway may run on another host, so it gets no activator (build_network leaves the
    tier out) and its scale-to-zero deployments cannot wake through it."""
    gateway_host = hello.gateway_address.rsplit(":", 1)[0]
    if activator_reachable(activator_host, gateway_host):
        return None
    return (
        f"region {hello.region}'s gateway listens on {hello.gateway_address}, but the activator "
        f"on {activator_host}: that gateway gets no activator, so its scale-to-zero "
        "deployments cannot wake from its requests (start the control plane with "
        "--activator-host set to an address of this host that the gateway reaches)"
    )


def _hold_request(headers: Mapping[str, str], gateway: str) -> HoldRequest:
    try:
        timeout_s = int(headers.get("x-envoy-expected-rq-timeout-ms", "0")) / 1000
    except ValueError:
        timeout_s = 0.0
    return HoldRequest(
        gateway=gateway,
        deployment=headers.get(DEPLOYMENT_HEADER, ""),
        environment=headers.get(ENVIRONMENT_HEADER, ""),
        version=headers.get(VERSION_HEADER, ""),
        envoy_timeout_s=timeout_s,
    )


def _caller(auth_context: AuthContext, tls: ActivatorTls, claimed: str) -> str | CallerRefusal:
    """The caller's region from its verified certificate, or why it may not be held."""
    try:
        facts = verified_caller(auth_context, tls.ca)
    except PeerUnauthenticatedError as exc:
        return CallerRefusal(str(exc))
    return caller_gateway(facts.region, facts.spiffe_id, claimed)


class _HoldAnyMethod(grpc.GenericRpcHandler):
    """Every gRPC method but health: hold it (its message unread), answer retry or the reason."""

    def __init__(self, activator: Activator, tls: ActivatorTls) -> None:
        self._activator = activator
        self._tls = tls

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler | None:
        # Stream-unary on our side, whatever the client calls: the handler never reads the
        # request message, so no more of it arrives than the stream's flow-control window.
        return grpc.stream_unary_rpc_method_handler(
            self._hold, request_deserializer=None, response_serializer=None
        )

    async def _hold(self, requests: AsyncIterator[bytes], context: Any) -> bytes:
        headers = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        gateway = _caller(context.auth_context(), self._tls, headers.get(GATEWAY_REGION_HEADER, ""))
        if isinstance(gateway, CallerRefusal):
            log.warning("activator: refused %s: %s", context.peer(), gateway.message)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, gateway.message)
            raise AssertionError("abort returned")
        result = await self._activator.hold(_hold_request(headers, gateway))
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
    """Both listeners on `host` (free ports unless given), mutual TLS with `tls`."""

    def __init__(self, activator: Activator, host: str, tls: ActivatorTls) -> None:
        self.activator = activator
        self.host = host
        self.tls = tls
        self.grpc_port = 0
        self.http_port = 0
        self._grpc: grpc.aio.Server | None = None
        self._runner: web.AppRunner | None = None
        self._http_tls: HttpTls | None = None

    async def start(self, grpc_port: int = 0, http_port: int = 0) -> None:
        server = grpc.aio.server()
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        server.add_generic_rpc_handlers((_HoldAnyMethod(self.activator, self.tls),))
        self.grpc_port = server.add_secure_port(
            f"{self.host}:{grpc_port}", self.tls.grpc_credentials()
        )
        await server.start()
        await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        self._grpc = server
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._http)
        # No lingering: a connection whose request body did not all arrive is closed after the
        # answer instead of being read (and thrown away) for seconds. A small read buffer: it
        # is all of an unread body that is taken in (reading pauses at twice its size).
        self._runner = web.AppRunner(
            app, access_log=None, lingering_time=0, read_bufsize=HTTP_READ_BUFFER
        )
        await self._runner.setup()
        self._http_tls = self.tls.http_tls()
        site = web.TCPSite(self._runner, self.host, http_port, ssl_context=self._http_tls.context)
        await site.start()
        self.http_port = _bound_port(site)
        log.info(
            "activator on %s: gRPC %d, REST %d (mTLS)", self.host, self.grpc_port, self.http_port
        )

    async def _http(self, request: web.Request) -> web.StreamResponse:
        if self._http_tls is not None:
            self._http_tls.refresh()  # a renewed certificate, for the handshakes to come
        if request.path in HEALTH_PATHS:
            return web.json_response({"ready": True})
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        gateway = _caller(
            auth_context_of(der), self.tls, request.headers.get(GATEWAY_REGION_HEADER, "")
        )
        if isinstance(gateway, CallerRefusal):
            log.warning("activator: refused %s: %s", request.remote, gateway.message)
            return web.json_response({"error": gateway.message}, status=403)
        # The body stays unread: Envoy keeps its own copy to replay.
        result = await self.activator.hold(_hold_request(request.headers, gateway))
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
