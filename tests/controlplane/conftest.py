"""Shared control-plane fixtures: a real AdsServer on a grpc.aio server on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from controlplane.xds import SnapshotCache, add_ads_to_server
from tests.controlplane.xds.ads_client import AdsClient

EPOCH = 7


@pytest.fixture
def cache() -> SnapshotCache:
    return SnapshotCache(epoch=EPOCH)


@pytest.fixture
async def ads_address(cache: SnapshotCache) -> AsyncIterator[str]:
    server = grpc.aio.server()
    add_ads_to_server(server, cache)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@pytest.fixture
async def connect(ads_address: str) -> AsyncIterator[Callable[[str], Awaitable[AdsClient]]]:
    """connect(node_id) -> a fresh ADS stream; all are closed at the end."""
    channel = grpc.aio.insecure_channel(ads_address)
    clients: list[AdsClient] = []

    async def _connect(node_id: str) -> AdsClient:
        client = AdsClient(channel, node_id)
        clients.append(client)
        return client

    try:
        yield _connect
    finally:
        for client in clients:
            await client.close()
        await channel.close()
