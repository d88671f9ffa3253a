"""A raw ADS client for protocol tests: writes DiscoveryRequests, reads DiscoveryResponses.

Behaves like Envoy where it matters: node only on the first request, an ACK carries the
response's version and nonce, a NACK carries the last accepted version, the rejected nonce and
error_detail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2

from controlplane.xds import CLUSTER, ENDPOINT, EXTENSION_CONFIG, LISTENER, ROUTE, SECRET

READ_TIMEOUT_S = 10.0
_TYPE_OF = {
    CLUSTER: "envoy.config.cluster.v3.Cluster",
    ENDPOINT: "envoy.config.endpoint.v3.ClusterLoadAssignment",
    LISTENER: "envoy.config.listener.v3.Listener",
    ROUTE: "envoy.config.route.v3.RouteConfiguration",
    EXTENSION_CONFIG: "envoy.config.core.v3.TypedExtensionConfig",
    SECRET: "envoy.extensions.transport_sockets.tls.v3.Secret",
}

Response = Any  # discovery_pb2.DiscoveryResponse


class AdsClient:
    def __init__(self, channel: grpc.aio.Channel, node_id: str) -> None:
        self.node_id = node_id
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        self._call = stub.StreamAggregatedResources()
        self._node_sent = False
        self.accepted: dict[str, str] = {}  # type_url -> last ACKed version
        self.nonces: dict[str, str] = {}  # type_url -> latest nonce received

    async def request(
        self,
        type_url: str,
        names: Iterable[str] = (),
        nonce: str | None = None,
        version: str | None = None,
        error: str | None = None,
    ) -> None:
        """Send a request; nonce/version default to the latest received/accepted ones."""
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url,
            resource_names=list(names),
            response_nonce=self.nonces.get(type_url, "") if nonce is None else nonce,
            version_info=self.accepted.get(type_url, "") if version is None else version,
        )
        if not self._node_sent:
            request.node.CopyFrom(base_pb2.Node(id=self.node_id, cluster="test"))
            self._node_sent = True
        if error is not None:
            request.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        await self._call.write(request)

    async def recv(self) -> Response:
        response = await asyncio.wait_for(self._call.read(), READ_TIMEOUT_S)
        assert response is not grpc.aio.EOF, "stream ended"
        self.nonces[response.type_url] = response.nonce
        return response

    async def ack(self, response: Response, names: Iterable[str] = ()) -> None:
        self.accepted[response.type_url] = response.version_info
        await self.request(response.type_url, names, nonce=response.nonce)

    async def nack(self, response: Response, message: str, names: Iterable[str] = ()) -> None:
        await self.request(response.type_url, names, nonce=response.nonce, error=message)

    async def close(self) -> None:
        self._call.cancel()

    async def status_code(self) -> grpc.StatusCode:
        return await self._call.code()


def unpack(response: Response) -> dict[str, Message]:
    """Resources of a response by name (Envoy's naming: cluster_name for endpoints)."""
    out: dict[str, Message] = {}
    for packed in response.resources:
        assert packed.type_url == response.type_url
        message = _message_class(response.type_url).FromString(packed.value)
        out[getattr(message, "name", "") or message.cluster_name] = message
    return out


def _message_class(type_url: str) -> Any:
    from google.protobuf import symbol_database

    return symbol_database.Default().GetSymbol(_TYPE_OF[type_url])


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], what: str, timeout_s: float = 10.0
) -> None:
    """Poll `condition` on the event loop (the server under test runs on it too)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.02)
