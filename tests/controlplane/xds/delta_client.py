"""A raw incremental ADS client for protocol tests: writes DeltaDiscoveryRequests, reads
DeltaDiscoveryResponses.

Behaves like Envoy where it matters: node only on the first request; the first request of a
type lists what the client holds (`initial_resource_versions`, after a reconnect); an ACK
carries the response's nonce, a NACK the nonce and error_detail; the client keeps the
resources (and their versions) of what it ACKed, and applies removals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2

from tests.controlplane.xds.ads_client import READ_TIMEOUT_S

Response = Any  # discovery_pb2.DeltaDiscoveryResponse


@dataclass
class Held:
    """What the client holds of one type: name -> (version, message)."""

    versions: dict[str, str] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)


class DeltaClient:
    def __init__(self, channel: grpc.aio.Channel, node_id: str) -> None:
        self.node_id = node_id
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        self._call = stub.DeltaAggregatedResources()
        self._node_sent = False
        self.held: dict[str, Held] = {}  # type_url -> what was ACKed
        self.nonces: dict[str, str] = {}  # type_url -> latest nonce received

    async def request(
        self,
        type_url: str,
        subscribe: Iterable[str] = (),
        unsubscribe: Iterable[str] = (),
        *,
        nonce: str | None = None,
        error: str | None = None,
        initial: Mapping[str, str] | None = None,
    ) -> None:
        """Send a request; the nonce defaults to the latest received for the type."""
        request = discovery_pb2.DeltaDiscoveryRequest(
            type_url=type_url,
            resource_names_subscribe=list(subscribe),
            resource_names_unsubscribe=list(unsubscribe),
            response_nonce=self.nonces.get(type_url, "") if nonce is None else nonce,
            initial_resource_versions=dict(initial or {}),
        )
        if not self._node_sent:
            request.node.CopyFrom(base_pb2.Node(id=self.node_id, cluster="test"))
            self._node_sent = True
        if error is not None:
            request.error_detail.CopyFrom(status_pb2.Status(code=13, message=error))
        await self._call.write(request)

    async def subscribe(
        self, type_url: str, names: Iterable[str] = (), initial: Mapping[str, str] | None = None
    ) -> None:
        """The first request of a type: no names is a wildcard subscription; `initial` is what
        the client holds already (a reconnect), kept as held."""
        self.held.setdefault(type_url, Held()).versions.update(initial or {})
        await self.request(type_url, names, nonce="", initial=initial)

    async def recv(self) -> Response:
        response = await asyncio.wait_for(self._call.read(), READ_TIMEOUT_S)
        assert response is not grpc.aio.EOF, "stream ended"
        self.nonces[response.type_url] = response.nonce
        return response

    async def ack(self, response: Response, subscribe: Iterable[str] = ()) -> None:
        """Apply the response (as Envoy would) and ACK it, optionally subscribing more names."""
        held = self.held.setdefault(response.type_url, Held())
        for name, (version, message) in updates(response).items():
            held.versions[name] = version
            held.messages[name] = message
        for name in response.removed_resources:
            held.versions.pop(name, None)
            held.messages.pop(name, None)
        await self.request(response.type_url, subscribe, nonce=response.nonce)

    async def nack(self, response: Response, message: str) -> None:
        await self.request(response.type_url, nonce=response.nonce, error=message)

    def versions(self, type_url: str) -> dict[str, str]:
        """What a reconnecting client lists as initial_resource_versions of the type."""
        return dict(self.held.get(type_url, Held()).versions)

    async def close(self) -> None:
        self._call.cancel()

    async def status_code(self) -> grpc.StatusCode:
        return await self._call.code()


def updates(response: Response) -> dict[str, tuple[str, Message]]:
    """The response's added/changed resources: name -> (version, message)."""
    out: dict[str, tuple[str, Message]] = {}
    for resource in response.resources:
        assert resource.resource.type_url == response.type_url
        message = _message_class(response.type_url).FromString(resource.resource.value)
        out[resource.name] = (resource.version, message)
    return out


def names(response: Response) -> set[str]:
    """Names of the response's added/changed resources."""
    return {resource.name for resource in response.resources}


def _message_class(type_url: str) -> Any:
    from google.protobuf import symbol_database

    return symbol_database.Default().GetSymbol(type_url.rsplit("/", 1)[-1])
