"""A stand-in for Envoy that only speaks ADS, for bench/scale.py at sizes three real Envoys do
not fit on this machine (10,000 deployments: ~40,000 clusters and a route table of hundreds of
MB each). NOT an Envoy: it routes nothing and listens on no gateway port. It reads the agent's
bootstrap like Envoy would, connects to the control plane's mesh port with the region's
certificate, subscribes like Envoy (CDS and LDS wildcard, then the EDS, RDS and ECDS names they
name, and the gateway's two SDS secrets) and ACKs every response as soon as it has parsed what
it needs from it. It speaks the protocol the bootstrap's `ads_config.api_type` names: state of
the world (`GRPC`) or incremental (`DELTA_GRPC`: it keeps the clusters and listeners it was
sent, subscribes to and unsubscribes from the names they add and drop). Its admin interface
answers what the agent reads: ready, no clusters, no stats. Figures taken with it are the
control plane's side only, and say so.

Run as: python -m bench.fake_envoy -c BOOTSTRAP [Envoy's other flags, ignored]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml
from aiohttp import web
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from controlplane.ir import names
from controlplane.xds import CLUSTER, ENDPOINT, EXTENSION_CONFIG, LISTENER, ROUTE, SECRET

XDS_CLUSTER = "meshline_xds"
RECONNECT_S = 1.0


@dataclass(frozen=True)
class Bootstrap:
    node: str
    admin_host: str
    admin_port: int
    xds_target: str
    ca_pem: bytes
    certificate_pem: bytes
    key_pem: bytes
    delta: bool = False

    @staticmethod
    def read(path: Path) -> Bootstrap:
        doc = yaml.safe_load(path.read_text())
        admin = doc["admin"]["address"]["socket_address"]
        xds = next(c for c in doc["static_resources"]["clusters"] if c["name"] == XDS_CLUSTER)
        address = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        socket = address["address"]["socket_address"]
        common = xds["transport_socket"]["typed_config"]["common_tls_context"]
        ca_file = common["validation_context"]["trusted_ca"]["filename"]
        sds = common["tls_certificate_sds_secret_configs"][0]["sds_config"]
        secret = yaml.safe_load(Path(sds["path_config_source"]["path"]).read_text())
        tls = secret["resources"][0]["tls_certificate"]
        return Bootstrap(
            node=str(doc["node"]["id"]),
            admin_host=str(admin["address"]),
            admin_port=int(admin["port_value"]),
            xds_target=f"{socket['address']}:{socket['port_value']}",
            ca_pem=Path(ca_file).read_bytes(),
            certificate_pem=tls["certificate_chain"]["inline_string"].encode(),
            key_pem=tls["private_key"]["inline_string"].encode(),
            delta=doc["dynamic_resources"]["ads_config"].get("api_type") == "DELTA_GRPC",
        )


class Subscriptions:
    """What this stand-in asks for and has accepted, per type (SotW rules: an ACK carries the
    response's version and nonce; a new name set goes with the latest nonce)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.names: dict[str, list[str]] = {CLUSTER: [], LISTENER: []}
        self.versions: dict[str, str] = {}
        self.nonces: dict[str, str] = {}
        self._node_sent = False

    def request(self, type_url: str) -> discovery_pb2.DiscoveryRequest:
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url,
            resource_names=self.names.get(type_url, []),
            version_info=self.versions.get(type_url, ""),
            response_nonce=self.nonces.get(type_url, ""),
        )
        if not self._node_sent:
            request.node.CopyFrom(base_pb2.Node(id=self.node, cluster=self.node))
            self._node_sent = True
        return request

    def accept(self, response: discovery_pb2.DiscoveryResponse) -> list[str]:
        """ACK `response`; the types whose subscription it changes (to ask for again)."""
        type_url = response.type_url
        self.versions[type_url] = response.version_info
        self.nonces[type_url] = response.nonce
        wanted: dict[str, list[str]] = {}
        if type_url == CLUSTER:
            wanted[ENDPOINT] = sorted(_eds_names(response.resources))
            wanted[SECRET] = [names.CERTIFICATE_SECRET, names.TRUSTED_CA_SECRET]
        elif type_url == LISTENER:
            routes, filters = _listener_names(response.resources)
            wanted[ROUTE], wanted[EXTENSION_CONFIG] = sorted(routes), sorted(filters)
        changed = []
        for child, child_names in wanted.items():
            if self.names.get(child) != child_names:
                self.names[child] = child_names
                changed.append(child)
        return changed


class DeltaSubscriptions:
    """The same, over incremental xDS: the clusters and listeners held (a response adds,
    replaces or removes some), the names they need, and requests that subscribe to what is
    new and unsubscribe from what is no longer named; an ACK is the response's nonce alone."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.names: dict[str, set[str]] = {}
        # CDS / LDS: resource name -> the child names it needs, per child type.
        self.held: dict[str, dict[str, dict[str, set[str]]]] = {CLUSTER: {}, LISTENER: {}}
        self._node_sent = False

    def _request(self, type_url: str, **fields: Any) -> discovery_pb2.DeltaDiscoveryRequest:
        request = discovery_pb2.DeltaDiscoveryRequest(type_url=type_url, **fields)
        if not self._node_sent:
            request.node.CopyFrom(base_pb2.Node(id=self.node, cluster=self.node))
            self._node_sent = True
        return request

    def wildcard(self, type_url: str) -> discovery_pb2.DeltaDiscoveryRequest:
        return self._request(type_url)

    def accept(
        self, response: discovery_pb2.DeltaDiscoveryResponse
    ) -> list[discovery_pb2.DeltaDiscoveryRequest]:
        """The ACK of `response`, then the subscription changes it causes."""
        type_url = response.type_url
        out = [self._request(type_url, response_nonce=response.nonce)]
        held = self.held.get(type_url)
        if held is None:
            return out
        for name in response.removed_resources:
            held.pop(name, None)
        for resource in response.resources:
            held[resource.name] = _children(type_url, resource.resource)
        for child in _CHILD_TYPES[type_url]:
            wanted = set().union(*(needs.get(child, set()) for needs in held.values()))
            had = self.names.get(child, set())
            if wanted == had:
                continue
            self.names[child] = wanted
            out.append(
                self._request(
                    child,
                    resource_names_subscribe=sorted(wanted - had),
                    resource_names_unsubscribe=sorted(had - wanted),
                )
            )
        return out


_CHILD_TYPES = {CLUSTER: (ENDPOINT, SECRET), LISTENER: (ROUTE, EXTENSION_CONFIG)}


def _children(type_url: str, packed: Any) -> dict[str, set[str]]:
    if type_url == CLUSTER:
        return {
            ENDPOINT: _eds_names([packed]),
            SECRET: {names.CERTIFICATE_SECRET, names.TRUSTED_CA_SECRET},
        }
    routes, filters = _listener_names([packed])
    return {ROUTE: routes, EXTENSION_CONFIG: filters}


def _eds_names(resources: Sequence[Any]) -> set[str]:
    out = set()
    for packed in resources:
        cluster = cluster_pb2.Cluster.FromString(packed.value)
        if cluster.type == cluster_pb2.Cluster.EDS:
            out.add(cluster.eds_cluster_config.service_name or cluster.name)
    return out


def _listener_names(resources: Sequence[Any]) -> tuple[set[str], set[str]]:
    routes, filters = set(), set()
    for packed in resources:
        listener = listener_pb2.Listener.FromString(packed.value)
        for chain in listener.filter_chains:
            for network_filter in chain.filters:
                manager = hcm_pb2.HttpConnectionManager()
                if not network_filter.typed_config.Unpack(manager):
                    continue
                if manager.HasField("rds"):
                    routes.add(manager.rds.route_config_name)
                for http_filter in manager.http_filters:
                    if http_filter.HasField("config_discovery"):
                        filters.add(http_filter.name)
    return routes, filters


async def run_ads(boot: Bootstrap, stop: asyncio.Event) -> None:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=boot.ca_pem,
        private_key=boot.key_pem,
        certificate_chain=boot.certificate_pem,
    )
    options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    while not stop.is_set():
        if boot.delta:
            await run_delta_once(boot, credentials, options)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RECONNECT_S)
            continue
        subscriptions = Subscriptions(boot.node)
        outbox: asyncio.Queue[discovery_pb2.DiscoveryRequest] = asyncio.Queue()
        for type_url in (CLUSTER, LISTENER):
            outbox.put_nowait(subscriptions.request(type_url))

        async def requests(
            queue: asyncio.Queue[discovery_pb2.DiscoveryRequest] = outbox,
        ) -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
            while True:
                yield await queue.get()

        try:
            async with grpc.aio.secure_channel(boot.xds_target, credentials, options) as channel:
                stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
                call = stub.StreamAggregatedResources(requests())
                async for response in call:
                    changed = subscriptions.accept(response)
                    outbox.put_nowait(subscriptions.request(response.type_url))
                    for child in changed:
                        outbox.put_nowait(subscriptions.request(child))
        except grpc.RpcError as exc:
            print(f"ADS stream ended: {exc.code()}; reconnecting", file=sys.stderr, flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RECONNECT_S)


async def run_delta_once(
    boot: Bootstrap, credentials: grpc.ChannelCredentials, options: list[tuple[str, int]]
) -> None:
    """One incremental ADS stream, until it ends (from scratch: nothing held)."""
    subscriptions = DeltaSubscriptions(boot.node)
    outbox: asyncio.Queue[discovery_pb2.DeltaDiscoveryRequest] = asyncio.Queue()
    for type_url in (CLUSTER, LISTENER):
        outbox.put_nowait(subscriptions.wildcard(type_url))

    async def requests() -> AsyncIterator[discovery_pb2.DeltaDiscoveryRequest]:
        while True:
            yield await outbox.get()

    try:
        async with grpc.aio.secure_channel(boot.xds_target, credentials, options) as channel:
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            async for response in stub.DeltaAggregatedResources(requests()):
                for request in subscriptions.accept(response):
                    outbox.put_nowait(request)
    except grpc.RpcError as exc:
        print(f"delta ADS stream ended: {exc.code()}; reconnecting", file=sys.stderr, flush=True)


async def run_admin(boot: Bootstrap, stop: asyncio.Event) -> web.AppRunner:
    async def ready(_: web.Request) -> web.Response:
        return web.Response(text="LIVE\n")

    async def clusters(_: web.Request) -> web.Response:
        return web.Response(text="")

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({"stats": []})

    async def quit_(_: web.Request) -> web.Response:
        stop.set()
        return web.Response(text="OK\n")

    app = web.Application()
    app.router.add_get("/ready", ready)
    app.router.add_get("/clusters", clusters)
    app.router.add_get("/stats", stats)
    app.router.add_post("/quitquitquit", quit_)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, boot.admin_host, boot.admin_port).start()
    return runner


async def main_async(boot: Bootstrap) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = await run_admin(boot, stop)
    ads = asyncio.create_task(run_ads(boot, stop))
    await stop.wait()
    ads.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ads
    await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-c", dest="config", type=Path, required=True)
    args, _ = parser.parse_known_args(argv)
    asyncio.run(main_async(Bootstrap.read(args.config)))


if __name__ == "__main__":
    main()
