"""The services of the mesh port besides the agent stream and Renew, each behind the caller's
region identity: ADS for the regions' Envoys, artifact downloads for agents on other machines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from controlplane.agents.peers import MeshPeers
from controlplane.api.servicers import ModelServicer
from meshline.v1 import api_pb2, api_pb2_grpc

Context = Any  # grpc ships no type stubs for the servicer context


async def _chain(
    first: discovery_pb2.DiscoveryRequest,
    rest: AsyncIterator[discovery_pb2.DiscoveryRequest],
) -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
    yield first
    async for request in rest:
        yield request


class AdsGate(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    """ADS for an Envoy whose client certificate is its node's region: an Envoy's node id is
    its region's name, so the first request's node id must name the certificate's region
    before the stream reaches the ADS server (which then serves that node only)."""

    def __init__(
        self, ads: ads_pb2_grpc.AggregatedDiscoveryServiceServicer, peers: MeshPeers
    ) -> None:
        self._ads = ads
        self._peers = peers

    async def StreamAggregatedResources(
        self, request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest], context: Context
    ) -> None:
        what = "fetching Envoy configuration (ADS)"
        region = await self._peers.region_of(context, what)
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None:
            return
        node = first.node.id if first.HasField("node") else ""
        await self._peers.require(context, node, f"{what} of node '{node}' by region {region}")
        await self._ads.StreamAggregatedResources(_chain(first, requests), context)


class MeshArtifacts(api_pb2_grpc.ModelServiceServicer):
    """DownloadArtifact for agents: any region's certificate may fetch an artifact by digest
    (its workers run what the control plane placed there). Every other ModelService method is
    the management API's, on the API port (UNIMPLEMENTED here)."""

    def __init__(self, models: ModelServicer, peers: MeshPeers) -> None:
        self._models = models
        self._peers = peers

    async def DownloadArtifact(
        self, request: api_pb2.DownloadArtifactRequest, context: Context
    ) -> AsyncIterator[api_pb2.DownloadArtifactResponse]:
        await self._peers.region_of(context, f"downloading artifact sha256:{request.sha256[:64]}")
        async for message in self._models.DownloadArtifact(request, context):
            yield message
