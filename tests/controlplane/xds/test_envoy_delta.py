"""Incremental ADS against a real Envoy (ads_config api_type DELTA_GRPC): adds, updates and
removals reach it resource by resource, a rejected cluster is not sent again until it
changes, and after a control-plane restart Envoy's initial_resource_versions spare it what it
already has.

What Envoy got is read from Envoy itself: its config log says how many resources each delta
update it accepted added and removed, config_dump which version of each cluster it runs, and
its CDS counters count every update it accepted or rejected.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from controlplane.xds import CLUSTER, ENDPOINT, LISTENER, ROUTE, SnapshotCache, add_ads_to_server
from tests.controlplane.conftest import EPOCH
from tests.controlplane.xds import resources as r
from tests.controlplane.xds.ads_client import eventually
from tests.controlplane.xds.test_envoy_ads import BOOTSTRAP, ENVOY, NODE, SERVED, _broken_cluster
from tests.harness.processes import ManagedProcess, free_port, managed, port_open

pytestmark = pytest.mark.timeout(120)

DELTA_BOOTSTRAP = BOOTSTRAP.replace("api_type: GRPC", "api_type: DELTA_GRPC")
# Envoy's config log at debug level states what each accepted delta update held.
ACCEPTED = re.compile(
    r"Delta config for type\.googleapis\.com/envoy\.config\.cluster\.v3\.Cluster accepted "
    r"with (\d+) resources added, (\d+) removed"
)


def _envoy_args(config: Path) -> list[str]:
    return [str(ENVOY), "-c", str(config), "--disable-hot-restart", "--concurrency", "1",
            "-l", "warning", "--component-log-level", "config:debug"]  # fmt: skip


def _cds_updates(log: str) -> list[tuple[int, int]]:
    """(added, removed) of each CDS update Envoy accepted, oldest first."""
    return [(int(added), int(removed)) for added, removed in ACCEPTED.findall(log)]


async def _logged(envoy: ManagedProcess, updates: list[tuple[int, int]], last: int = 0) -> None:
    """Envoy's log shows exactly these CDS updates (the last `last` of them, if given); the
    line may reach the file a moment after the ACK."""

    def shown() -> bool:
        found = _cds_updates(envoy.log())
        return (found[-last:] if last else found) == updates

    try:
        await eventually(shown, f"CDS updates {updates} in Envoy's log")
    except TimeoutError:
        raise AssertionError(f"Envoy logged CDS updates {_cds_updates(envoy.log())}") from None


@asynccontextmanager
async def _ads_server(cache: SnapshotCache, port: int) -> AsyncIterator[None]:
    server = grpc.aio.server()
    add_ads_to_server(server, cache)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        yield
    finally:
        await server.stop(None)


def _admin_json(admin_port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}{path}", timeout=5) as reply:
        return json.loads(reply.read())


def _cluster_versions(admin_port: int) -> dict[str, str]:
    """The dynamic clusters Envoy runs, with the version of the response that last set each."""
    dump = _admin_json(admin_port, "/config_dump?resource=dynamic_active_clusters")
    return {entry["cluster"]["name"]: entry["version_info"] for entry in dump.get("configs", [])}


def _counter(admin_port: int, name: str) -> int:
    stats = _admin_json(admin_port, f"/stats?format=json&filter=^{name}$")
    return int(next(s["value"] for s in stats["stats"] if s["name"] == name))


def _in_sync(cache: SnapshotCache) -> bool:
    types = cache.node_status(NODE).types
    return all(types[t].in_sync for t in SERVED)


def _snapshot(listen_port: int, upstream: int, **timeouts_ms: int) -> r.Resources:
    """Clusters by name with their connect timeouts; the route goes to the first one."""
    clusters = list(timeouts_ms)
    return r.resources(
        clusters=[r.cluster(name, ms) for name, ms in timeouts_ms.items()],
        assignments=[r.load_assignment(name, [upstream]) for name in clusters],
        listeners=[r.listener("http", listen_port, "routes")],
        routes=[r.route_config("routes", clusters[0])],
    )


async def test_envoy_over_delta_adds_updates_removes_rejects_and_reconnects(
    tmp_path: Path,
) -> None:
    ads_port, admin_port, listen_port, upstream = (free_port() for _ in range(4))
    cache = SnapshotCache(epoch=EPOCH)
    cache.set_resources(NODE, _snapshot(listen_port, upstream, svc=1000, other=1000))
    config = tmp_path / "envoy.yaml"
    host = "127.0.0.1"
    config.write_text(
        DELTA_BOOTSTRAP.format(node=NODE, admin_port=admin_port, host=host, port=ads_port)
    )

    async with _ads_server(cache, ads_port):
        with managed("envoy", _envoy_args(config), tmp_path) as envoy:
            await eventually(lambda: _in_sync(cache), "Envoy ACKs every type", timeout_s=30)
            await eventually(lambda: port_open(host, listen_port), "the listener serves")
            first = _cluster_versions(admin_port)
            assert set(first) == {"svc", "other"}
            await _logged(envoy, [(2, 0)])

            # An update: only the changed cluster is sent, and the re-created cluster warms at
            # once (its endpoints follow it; Envoy's own fetch would wait 15 s).
            cache.set_resources(NODE, _snapshot(listen_port, upstream, svc=1000, other=2000))
            await eventually(lambda: _in_sync(cache), "the update is ACKed", timeout_s=10)
            updated = _cluster_versions(admin_port)
            assert updated["svc"] == first["svc"] and updated["other"] != first["other"]
            await _logged(envoy, [(2, 0), (1, 0)])

            # A cluster Envoy rejects: NACKed with Envoy's text; not sent again when another
            # cluster changes (Envoy counts one rejection only); the NACK stands meanwhile.
            rejected_before = _counter(admin_port, "cluster_manager.cds.update_rejected")
            broken = _snapshot(listen_port, upstream, svc=1000, other=2000)
            broken[CLUSTER]["svc"] = _broken_cluster("svc")
            cache.set_resources(NODE, broken)

            def nacked() -> bool:
                return cache.node_status(NODE).types[CLUSTER].nack is not None

            await eventually(nacked, "Envoy NACKs the broken cluster", timeout_s=30)
            nack = cache.node_status(NODE).types[CLUSTER].nack
            assert nack is not None and "positive duration" in nack.message  # Envoy's words
            assert nack.changed == {"svc"}
            accepted_before = _counter(admin_port, "cluster_manager.cds.update_success")
            broken[CLUSTER]["other"] = r.cluster("other", 3000)
            cache.set_resources(NODE, broken)
            other_version = cache.node_status(NODE).types[CLUSTER].snapshot_version
            assert other_version is not None
            await eventually(
                lambda: (
                    _counter(admin_port, "cluster_manager.cds.update_success") > accepted_before
                ),
                "Envoy takes the other cluster's change",
                timeout_s=30,
            )
            await eventually(
                lambda: other_version in cache.node_status(NODE).types[CLUSTER].answers,
                "the version with the rejected cluster answered",
            )
            answer = cache.node_status(NODE).types[CLUSTER].answers[other_version]
            assert answer is not None and "positive duration" in answer.message
            assert _counter(admin_port, "cluster_manager.cds.update_rejected") == (
                rejected_before + 1
            )
            assert _cluster_versions(admin_port)["svc"] == first["svc"]  # still the good one

            # Fixed: sent, ACKed, the NACK is gone.
            cache.set_resources(NODE, _snapshot(listen_port, upstream, svc=1500, other=3000))
            await eventually(lambda: _in_sync(cache), "the fix is ACKed", timeout_s=30)
            assert cache.node_status(NODE).types[CLUSTER].nack is None

            # A removal, make-before-break: svc2 comes, the route moves to it, then svc goes.
            cache.set_resources(NODE, _snapshot(listen_port, upstream, svc2=1000, other=3000))
            await eventually(lambda: _in_sync(cache), "the swap is ACKed", timeout_s=30)
            assert set(_cluster_versions(admin_port)) == {"svc2", "other"}
            await eventually(
                lambda: set(cache.acked_resources(NODE, ENDPOINT)) == {"svc2", "other"},
                "Envoy drops the removed cluster's endpoints",
            )
            await _logged(envoy, [(1, 0), (0, 1)], last=2)


async def test_envoy_reconnecting_to_a_restarted_control_plane_gets_only_what_differs(
    tmp_path: Path,
) -> None:
    ads_port, admin_port, listen_port, upstream = (free_port() for _ in range(4))
    host = "127.0.0.1"
    config = tmp_path / "envoy.yaml"
    config.write_text(
        DELTA_BOOTSTRAP.format(node=NODE, admin_port=admin_port, host=host, port=ads_port)
    )
    with managed("envoy", _envoy_args(config), tmp_path) as envoy:
        cache = SnapshotCache(epoch=EPOCH)
        cache.set_resources(NODE, _snapshot(listen_port, upstream, a=1000, b=1000, c=1000))
        async with _ads_server(cache, ads_port):
            await eventually(lambda: _in_sync(cache), "Envoy ACKs every type", timeout_s=30)
            before = _cluster_versions(admin_port)
            assert set(before) == {"a", "b", "c"}
            await _logged(envoy, [(3, 0)])

        # The control plane restarts (a new epoch) while b changed and c went away. Envoy
        # keeps serving meanwhile, reconnects, and lists what it has.
        restarted = SnapshotCache(epoch=EPOCH + 1)
        restarted.set_resources(NODE, _snapshot(listen_port, upstream, a=1000, b=2000))
        assert port_open(host, listen_port)
        async with _ads_server(restarted, ads_port):
            await eventually(lambda: _in_sync(restarted), "Envoy ACKs the restart", timeout_s=60)
            after = _cluster_versions(admin_port)
            assert set(after) == {"a", "b"}
            assert after["a"] == before["a"] and after["b"] != before["b"]
            # b came again, c went, a (unchanged) was not sent.
            await _logged(envoy, [(3, 0), (1, 1)])
            assert set(restarted.acked_resources(NODE, CLUSTER)) == {"a", "b"}
            for type_url in (LISTENER, ROUTE):
                assert restarted.node_status(NODE).types[type_url].in_sync
