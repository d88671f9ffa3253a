"""The services of the mesh port besides the agent stream and Renew, each behind the caller's
region identity (its region's certificate of record): ADS for the regions' Envoys, artifact
downloads for agents on other machines.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from controlplane.agents.peers import MeshPeers
from controlplane.api.servicers import ModelServicer
from controlplane.request_stream import peek_first
from meshline.v1 import api_pb2, api_pb2_grpc

log = logging.getLogger(__name__)

Context = Any  # grpc ships no type stubs for the servicer context


class AdsGate(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    """ADS for an Envoy whose client certificate is its node's region: an Envoy's node id is
    its region's name, so the first request's node id must name the certificate's region, and
    the certificate must be the region's certificate of record, before the stream reaches the
    ADS server (which then serves that node only). A Join of the region ends the streams
    opened with any other certificate (`end_streams`): an earlier agent's Envoy stops getting
    the region's configuration and secrets."""

    def __init__(
        self, ads: ads_pb2_grpc.AggregatedDiscoveryServiceServicer, peers: MeshPeers
    ) -> None:
        self._ads = ads
        self._peers = peers
        # Open streams by region: the task serving each, and the serial it was opened with.
        self._open: dict[str, dict[asyncio.Future[None], str]] = {}
        self._ended: dict[asyncio.Future[None], str] = {}

    async def StreamAggregatedResources(
        self, request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest], context: Context
    ) -> None:
        await self._gated(request_iterator, context, self._ads.StreamAggregatedResources, "(ADS)")

    async def DeltaAggregatedResources(
        self,
        request_iterator: AsyncIterator[discovery_pb2.DeltaDiscoveryRequest],
        context: Context,
    ) -> None:
        await self._gated(
            request_iterator, context, self._ads.DeltaAggregatedResources, "(delta ADS)"
        )

    async def _gated(
        self,
        request_iterator: AsyncIterator[Any],
        context: Context,
        serve: Callable[[AsyncIterator[Any], Context], Awaitable[None]],
        protocol: str,
    ) -> None:
        """Both protocols' streams: the same checks, the same bookkeeping of open streams."""
        what = f"fetching Envoy configuration {protocol}"
        peer = await self._peers.authenticated(context, what)
        first, requests = await peek_first(request_iterator)
        if first is None:
            return
        node = first.node.id if first.HasField("node") else ""
        await self._peers.authorize(
            context, peer, node, f"{what} of node '{node}' by region {peer.region}"
        )
        serving = asyncio.ensure_future(serve(requests, context))
        streams = self._open.setdefault(peer.region, {})
        streams[serving] = peer.serial
        try:
            await serving
        except asyncio.CancelledError:
            why = self._ended.pop(serving, "")
            if not why:
                raise
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, why)
        finally:
            self._ended.pop(serving, None)
            streams.pop(serving, None)
            if not streams and self._open.get(peer.region) is streams:
                del self._open[peer.region]

    def end_streams(self, region: str, keep_serial: str, why: str) -> int:
        """End `region`'s streams opened with a certificate other than `keep_serial`; how
        many."""
        ended = 0
        for serving, serial in list(self._open.get(region, {}).items()):
            if serial != keep_serial and not serving.done():
                self._ended[serving] = why
                serving.cancel()
                ended += 1
        if ended:
            log.info("ended %d ADS stream(s) of region %s: %s", ended, region, why)
        return ended


class MeshArtifacts(api_pb2_grpc.ModelServiceServicer):
    """DownloadArtifact for agents: any region's certificate of record may fetch an artifact
    by digest (its workers run what the control plane placed there). Every other ModelService
    method is the management API's, on the API port (UNIMPLEMENTED here)."""

    def __init__(self, models: ModelServicer, peers: MeshPeers) -> None:
        self._models = models
        self._peers = peers

    async def DownloadArtifact(
        self, request: api_pb2.DownloadArtifactRequest, context: Context
    ) -> AsyncIterator[api_pb2.DownloadArtifactResponse]:
        await self._peers.region_of(context, f"downloading artifact sha256:{request.sha256[:64]}")
        async for message in self._models.DownloadArtifact(request, context):
            yield message
