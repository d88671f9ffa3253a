"""GatewayConfigs against a real Envoy: a deployment Envoy rejects is found and left out, and
the region's config keeps moving; the quarantine survives a restart and lifts on a change."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from controlplane.ir.model import DeploymentRoute, Endpoint, GatewayIR
from controlplane.policy.settings import HealthCheckSettings
from controlplane.quarantine import GatewayConfigs, RouteKey, file
from controlplane.xds import CLUSTER, PUSH_ORDER, SnapshotCache
from tests.controlplane.xds.ads_client import eventually
from tests.controlplane.xds.test_envoy_ads import ENVOY, NODE, _bootstrap
from tests.harness.processes import free_port, managed

pytestmark = pytest.mark.timeout(90)

GOOD, BAD, LATER = ("production", "good"), ("production", "bad"), ("production", "later")


def route(key: RouteKey, timeout_s: float = 2.0) -> DeploymentRoute:
    worker = Endpoint(f"{key[1]}-w1", "127.0.0.1", free_port(), free_port())
    check = HealthCheckSettings(timeout_s=timeout_s)
    return DeploymentRoute.local(key[1], key[0], [worker], health_check=check)


def in_sync(cache: SnapshotCache) -> bool:
    types = cache.node_status(NODE).types
    return all(t in types and types[t].in_sync for t in PUSH_ORDER)


async def test_rejected_deployment_is_left_out_and_the_rest_keeps_updating(
    cache: SnapshotCache, ads_address: str, tmp_path: Path
) -> None:
    path = tmp_path / "state" / file.FILE_NAME
    configs = GatewayConfigs(cache, path)
    listen_port = free_port()
    good, bad, later = route(GOOD), route(BAD, timeout_s=1e11), route(LATER)

    def gateway(*routes: DeploymentRoute) -> GatewayIR:
        return GatewayIR(NODE, "127.0.0.1", listen_port, routes)

    async def settle(target: GatewayIR, fingerprints: Mapping[RouteKey, str], what: str) -> None:
        """Rebuild (as the reconciler does on every change) until Envoy has all of it."""

        def settled() -> bool:
            configs.configure(target, fingerprints)
            return in_sync(cache)

        await eventually(settled, what, timeout_s=30)

    fingerprints = {GOOD: "g", BAD: "b1", LATER: "l"}
    configs.configure(gateway(good), fingerprints)
    config = tmp_path / "envoy.yaml"
    config.write_text(_bootstrap(ads_address, free_port()))
    args = [str(ENVOY), "-c", str(config), "--disable-hot-restart", "--concurrency", "1"]
    with managed("envoy", [*args, "-l", "warning"], tmp_path):
        await settle(gateway(good), fingerprints, "Envoy ACKs the good deployment")

        # Two new deployments at once, one of them rejected: it is found (bisecting between
        # the two) and left out, and the other one reaches Envoy.
        await settle(gateway(good, bad, later), fingerprints, "Envoy ACKs all but the bad one")
        quarantined = configs.quarantined()
        assert list(quarantined) == [BAD] and list(quarantined[BAD]) == [NODE]
        assert "Duration out-of-range" in quarantined[BAD][NODE].message  # Envoy's own text
        assert quarantined[BAD][NODE].type_url == CLUSTER
        acked = set(cache.acked_resources(NODE, CLUSTER))
        assert {"good.production.grpc", "later.production.grpc"} <= acked
        assert not any(name.startswith("bad.") for name in acked)
        assert cache.node_status(NODE).types[CLUSTER].nack is None
        assert configs.blame() == {}  # no NACK stands any more

        # A restarted control plane remembers it: its first config already leaves it out.
        restarted = GatewayConfigs(cache, path)
        restarted.configure(gateway(good, bad, later), fingerprints)
        snapshot = cache.snapshot(NODE)
        assert snapshot is not None
        assert not any(n.startswith("bad.") for n in snapshot.types[CLUSTER].resources)
        assert restarted.quarantined() == quarantined

        # A changed (fixed) deployment is tried again, and now Envoy takes it.
        configs = restarted
        fixed = {**fingerprints, BAD: "b2"}
        await settle(gateway(good, route(BAD), later), fixed, "Envoy ACKs the fixed deployment")
        assert configs.quarantined() == {}
        assert "bad.production.grpc" in cache.acked_resources(NODE, CLUSTER)
        assert file.load(path) == {}
