"""The gRPC side of ADS: one task pair per Envoy stream, driving its protocol's stream state.

Both RPCs are served: StreamAggregatedResources (state of the world, `StreamState`) and
DeltaAggregatedResources (incremental, `DeltaStreamState`); protocols.py reports either's
answers to the cache alike. Each stream has a reader task that queues incoming requests and a
handler loop that takes queued requests and snapshot-change wake-ups in arrival order, applies
them to the stream's state, reports ACK/NACK to the cache, and writes whatever `plan()` returns.
Requests are handled strictly one after another, so ACK/NACK bookkeeping never races with a
push.

The node id comes from the first request (Envoy sets it only there by default); a stream without
one is rejected with INVALID_ARGUMENT. When the stream ends, by the client, an error or server
shutdown, the reader task is cancelled and the stream is unregistered (node `connected` goes
false when it was the node's last stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc

from controlplane.xds.cache import SnapshotCache
from controlplane.xds.protocols import DeltaProtocol, Request, SotwProtocol, StreamProtocol

log = logging.getLogger(__name__)

_WAKE = object()  # the node's snapshot changed
_END = object()  # the client closed its side or the read failed


class _Session:
    """One ADS stream of one node."""

    def __init__(
        self,
        cache: SnapshotCache,
        context: grpc.aio.ServicerContext[Any, Any],
        protocol: StreamProtocol,
    ) -> None:
        self._cache = cache
        self._context = context
        self._protocol = protocol
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._wake_queued = False
        self._node_id: str | None = None
        self._stream_id: int | None = None

    async def run(self, requests: AsyncIterator[Request]) -> None:
        reader = asyncio.create_task(self._read(requests))
        try:
            while True:
                items = [await self._queue.get()]
                while not self._queue.empty():
                    items.append(self._queue.get_nowait())
                for item in items:
                    if item is _END:
                        return
                    if item is _WAKE:
                        self._wake_queued = False
                    else:
                        await self._handle(item)
                await self._push()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            if self._node_id is not None and self._stream_id is not None:
                self._cache.disconnect(self._node_id, self._stream_id)
                log.info("ADS stream of node %s closed", self._node_id)

    async def _read(self, requests: AsyncIterator[Request]) -> None:
        try:
            async for request in requests:
                self._queue.put_nowait(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the transport failed; the stream is over
            log.info("ADS stream read ended: %s", exc)
        self._queue.put_nowait(_END)

    def _wake(self) -> None:
        if not self._wake_queued:
            self._wake_queued = True
            self._queue.put_nowait(_WAKE)

    async def _handle(self, request: Request) -> None:
        if self._node_id is None:
            node_id = request.node.id if request.HasField("node") else ""
            if not node_id:
                await self._context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "first DiscoveryRequest must set node.id"
                )
            self._node_id = node_id
            self._stream_id = self._cache.connect(node_id, self._wake)
            log.info("ADS stream of node %s opened", node_id)
        self._protocol.on_request(self._node_id, request)

    async def _push(self) -> None:
        if self._node_id is None:
            return
        snapshot = self._cache.snapshot(self._node_id)
        for response in self._protocol.plan(self._node_id, snapshot):
            await self._context.write(response)


class AdsServer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    """Aggregated Discovery Service over a `SnapshotCache`: state of the world and delta."""

    def __init__(self, cache: SnapshotCache) -> None:
        self._cache = cache

    async def StreamAggregatedResources(
        self,
        request_iterator: AsyncIterator[Request],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        protocol = SotwProtocol(self._cache)
        await _Session(self._cache, context, protocol).run(request_iterator)

    async def DeltaAggregatedResources(
        self,
        request_iterator: AsyncIterator[Request],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        protocol = DeltaProtocol(self._cache)
        await _Session(self._cache, context, protocol).run(request_iterator)


def add_ads_to_server(server: grpc.aio.Server, cache: SnapshotCache) -> AdsServer:
    """Register an AdsServer for `cache` on `server` (before it starts) and return it."""
    servicer = AdsServer(cache)
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(servicer, server)
    return servicer
