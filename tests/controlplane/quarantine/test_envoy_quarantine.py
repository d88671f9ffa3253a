"""GatewayConfigs against a real Envoy (and the real `envoy --mode validate` for its offline
checks): a deployment Envoy rejects is found and left out while the region's config keeps
moving; nothing the live Envoy serves is taken away to find it, not even without a baseline;
a rejection no deployment explains blames nobody; the quarantine and the accepted baseline are
kept in the store and survive a restart; a change lifts the quarantine."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from controlplane.ir.model import DeploymentRoute, Endpoint, GatewayIR
from controlplane.policy.settings import HealthCheckSettings
from controlplane.quarantine import GatewayConfigs
from controlplane.store import Store
from controlplane.store.quarantines import load_regions
from controlplane.xds import CLUSTER, ENDPOINT, LISTENER, PUSH_ORDER, SnapshotCache
from meshline.keys import DeploymentKey
from tests.controlplane.xds.ads_client import eventually
from tests.controlplane.xds.test_envoy_ads import ENVOY, NODE, _bootstrap
from tests.harness.processes import ManagedProcess, free_port, managed

pytestmark = pytest.mark.timeout(120)

GOOD, BAD, LATER = ("production", "good"), ("production", "bad"), ("production", "later")


def route(key: DeploymentKey, timeout_s: float = 2.0) -> DeploymentRoute:
    worker = Endpoint(f"{key[1]}-w1", "127.0.0.1", free_port(), free_port())
    check = HealthCheckSettings(timeout_s=timeout_s)
    return DeploymentRoute.local(key[1], key[0], [worker], health_check=check)


def in_sync(cache: SnapshotCache) -> bool:
    types = cache.node_status(NODE).types
    return all(t in types and types[t].in_sync for t in PUSH_ORDER)


def acked_deployments(cache: SnapshotCache) -> set[str]:
    """The deployments whose gRPC cluster Envoy has ACKed."""
    return {n.split(".")[0] for n in cache.acked_resources(NODE, CLUSTER) if n.endswith(".grpc")}


@contextmanager
def envoy(ads_address: str, tmp_path: Path) -> Iterator[ManagedProcess]:
    config = tmp_path / "envoy.yaml"
    config.write_text(_bootstrap(ads_address, free_port()))
    args = [str(ENVOY), "-c", str(config), "--disable-hot-restart", "--concurrency", "1"]
    with managed("envoy", [*args, "-l", "warning"], tmp_path) as process:
        yield process


async def settle(
    configs: GatewayConfigs,
    cache: SnapshotCache,
    target: GatewayIR,
    fingerprints: Mapping[DeploymentKey, str],
    what: str,
    invariant: Callable[[], None] = lambda: None,
) -> None:
    """Rebuild (as the reconciler does on every change) until Envoy has all of it, checking
    `invariant` at every step."""

    def settled() -> bool:
        invariant()
        configs.configure(target, fingerprints)
        return in_sync(cache)

    await eventually(settled, what, timeout_s=60)


async def test_rejected_deployment_is_left_out_and_the_rest_keeps_updating(
    cache: SnapshotCache, ads_address: str, tmp_path: Path
) -> None:
    listen_port = free_port()
    good, bad, later = route(GOOD), route(BAD, timeout_s=1e11), route(LATER)

    def gateway(*routes: DeploymentRoute) -> GatewayIR:
        return GatewayIR(NODE, "127.0.0.1", listen_port, routes)

    fingerprints = {GOOD: "g", BAD: "b1", LATER: "l"}
    with Store.open(tmp_path / "meshline.db") as store, envoy(ads_address, tmp_path):
        configs = GatewayConfigs(cache, store)
        try:
            await settle(configs, cache, gateway(good), fingerprints, "Envoy ACKs good")
            revision = store.revision

            # Two new deployments at once, one of them rejected: the offline check finds it,
            # it is left out, and the other one reaches Envoy.
            await settle(
                configs, cache, gateway(good, bad, later), fingerprints, "all but the bad one"
            )
        finally:
            configs.close()
        quarantined = configs.quarantined()
        assert list(quarantined) == [BAD] and list(quarantined[BAD]) == [NODE]
        assert "Duration out-of-range" in quarantined[BAD][NODE].message  # Envoy's own text
        assert quarantined[BAD][NODE].type_url == CLUSTER
        assert acked_deployments(cache) == {"good", "later"}
        assert cache.node_status(NODE).types[CLUSTER].nack is None
        assert configs.blame() == {}  # no NACK stands any more

        # Kept in the store, with the accepted baseline, without bumping its revision.
        record = load_regions(store)[NODE]
        assert dict(record.quarantined) == {BAD: quarantined[BAD][NODE]}
        assert dict(record.accepted) == {GOOD: "g", LATER: "l"}
        assert store.revision == revision

        # A restarted control plane remembers it: its first config already leaves it out.
        restarted = GatewayConfigs(cache, store)
        try:
            restarted.configure(gateway(good, bad, later), fingerprints)
            snapshot = cache.snapshot(NODE)
            assert snapshot is not None
            assert not any(n.startswith("bad.") for n in snapshot.types[CLUSTER].resources)
            assert restarted.quarantined() == quarantined

            # A changed (fixed) deployment is tried again, and now Envoy takes it.
            fixed = {**fingerprints, BAD: "b2"}
            await settle(restarted, cache, gateway(good, route(BAD), later), fixed, "fixed one")
        finally:
            restarted.close()
        assert restarted.quarantined() == {}
        assert "bad" in acked_deployments(cache)
        assert dict(load_regions(store)[NODE].quarantined) == {}


async def test_without_a_baseline_nothing_envoy_serves_is_taken_away(
    cache: SnapshotCache, ads_address: str, tmp_path: Path
) -> None:
    """A control plane with no accepted baseline for the region (a fresh store, an upgrade)
    meets an Envoy serving three deployments, and adds a fourth that Envoy rejects: every
    deployment is a suspect, yet none that Envoy serves ever leaves its config."""
    listen_port = free_port()
    keys = [("production", n) for n in ("a-good", "b-good", "c-bad", "d-good")]
    # The bad one's route timeout: Envoy rejects the shared route table, which no one owns.
    forms = {k: route(k) for k in keys}
    bad = forms[("production", "c-bad")]
    forms[("production", "c-bad")] = replace(bad, request_timeout_s=1e11)
    fingerprints = {k: k[1] for k in keys}
    serving = {"a-good", "b-good", "d-good"}

    def gateway(*names: str) -> GatewayIR:
        return GatewayIR(
            NODE, "127.0.0.1", listen_port, tuple(forms[k] for k in keys if k[1] in names)
        )

    def nothing_taken_away() -> None:
        assert serving <= acked_deployments(cache)

    with envoy(ads_address, tmp_path):
        with Store.open(tmp_path / "before.db") as before:
            first = GatewayConfigs(cache, before)
            try:
                await settle(first, cache, gateway(*serving), fingerprints, "Envoy serves three")
            finally:
                first.close()
        with Store.open(tmp_path / "fresh.db") as fresh:
            configs = GatewayConfigs(cache, fresh)
            try:
                await settle(
                    configs,
                    cache,
                    gateway(*serving, "c-bad"),
                    fingerprints,
                    "the bad one found and the rest ACKed",
                    nothing_taken_away,
                )
            finally:
                configs.close()
            assert list(configs.quarantined()) == [("production", "c-bad")]
            nothing_taken_away()


async def test_a_rejection_no_deployment_explains_blames_nobody(
    cache: SnapshotCache, ads_address: str, tmp_path: Path
) -> None:
    """The listener cannot bind (its new port is taken) while one deployment is added: Envoy
    NACKs the listeners, which no deployment owns, and the added deployment is not blamed."""
    good, later = route(GOOD), route(LATER)
    fingerprints = {GOOD: "g", LATER: "l"}
    woke = threading.Event()
    with (
        Store.open(tmp_path / "meshline.db") as store,
        envoy(ads_address, tmp_path),
        socket.socket() as taken,
    ):
        configs = GatewayConfigs(cache, store, wake=woke.set)
        try:
            await settle(
                configs,
                cache,
                GatewayIR(NODE, "127.0.0.1", free_port(), (good,)),
                fingerprints,
                "good",
            )
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            moved = GatewayIR(NODE, "127.0.0.1", taken.getsockname()[1], (good, later))

            def listener_rejected() -> bool:
                configs.configure(moved, fingerprints)
                nack = cache.node_status(NODE).types[LISTENER].nack
                return nack is not None

            await eventually(listener_rejected, "Envoy rejects the listener", timeout_s=30)
            await eventually(woke.is_set, "the offline check ends", timeout_s=60)
            configs.configure(moved, fingerprints)
        finally:
            configs.close()
        assert configs.quarantined() == {}
        assert configs.blame() == {}  # the standing NACK concerns every deployment
        nack = cache.node_status(NODE).types[LISTENER].nack
        assert nack is not None and "bind" in nack.message


async def test_a_rejected_update_keeps_the_deployment_at_its_accepted_form(
    cache: SnapshotCache, ads_address: str, tmp_path: Path
) -> None:
    """A serving deployment gets an update Envoy rejects (and a new worker): it keeps serving
    at the form Envoy accepted, routed to its current worker, also after a restart."""
    listen_port = free_port()
    serving, update = route(GOOD), route(GOOD, timeout_s=1e11)
    new_worker = update.main.local_endpoints[0] if update.main.local_endpoints else None
    assert new_worker is not None

    def gateway(route: DeploymentRoute) -> GatewayIR:
        return GatewayIR(NODE, "127.0.0.1", listen_port, (route,))

    def still_served() -> None:
        assert "good" in acked_deployments(cache)

    with Store.open(tmp_path / "meshline.db") as store, envoy(ads_address, tmp_path):
        configs = GatewayConfigs(cache, store)
        try:
            await settle(configs, cache, gateway(serving), {GOOD: "g1"}, "Envoy serves good")
            await settle(configs, cache, gateway(update), {GOOD: "g2"}, "good kept", still_served)
        finally:
            configs.close()
        quarantine = configs.quarantined()[GOOD][NODE]
        assert quarantine.kept == "v1" and "Duration out-of-range" in quarantine.message
        cluster = cache.acked_resources(NODE, CLUSTER)["good.production.grpc"]
        assert cluster.health_checks[0].timeout.seconds == 2  # type: ignore[attr-defined]
        assignment = cache.acked_resources(NODE, ENDPOINT)["good.production.grpc"]
        ports = {
            e.endpoint.address.socket_address.port_value
            for group in assignment.endpoints  # type: ignore[attr-defined]
            for e in group.lb_endpoints
        }
        assert ports == {new_worker.grpc_port}

        restarted = GatewayConfigs(cache, store)  # the accepted form is in the store
        try:
            restarted.configure(gateway(update), {GOOD: "g2"})
        finally:
            restarted.close()
        snapshot = cache.snapshot(NODE)
        assert snapshot is not None
        kept = snapshot.types[CLUSTER].resources["good.production.grpc"].message
        assert kept.health_checks[0].timeout.seconds == 2  # type: ignore[attr-defined]
