"""GatewayConfigs' own bookkeeping, with Envoy's answers recorded in a real xDS cache the way
the ADS server records them."""

from __future__ import annotations

from pathlib import Path

from controlplane.ir.model import DeploymentRoute, Endpoint, GatewayIR
from controlplane.quarantine import GatewayConfigs
from controlplane.store import Store
from controlplane.store.quarantines import load_regions
from controlplane.xds import CLUSTER, ENDPOINT, SnapshotCache

NODE = "eu"
A = ("production", "a")


def gateway(port: int) -> GatewayIR:
    worker = Endpoint("w1", "127.0.0.1", port, port + 1)
    return GatewayIR(NODE, "127.0.0.1", 8080, (DeploymentRoute.local("a", "production", [worker]),))


def versions(cache: SnapshotCache) -> dict[str, str]:
    snapshot = cache.snapshot(NODE)
    assert snapshot is not None
    return {t: s.version for t, s in snapshot.types.items()}


def test_an_answer_to_a_push_replaced_before_it_arrived_still_counts(tmp_path: Path) -> None:
    """Endpoints change faster than Envoy answers: every push is replaced by the next before
    its answer arrives, yet the answer to each one that was sent is applied."""
    cache = SnapshotCache(7)
    with Store.open(tmp_path / "meshline.db") as store:
        configs = GatewayConfigs(cache, store)
        try:
            configs.configure(gateway(9000), {A: "fa"})
            sent = versions(cache)
            configs.configure(gateway(9100), {A: "fa"})  # only the endpoints moved
            assert versions(cache)[ENDPOINT] != sent[ENDPOINT]
            assert versions(cache)[CLUSTER] == sent[CLUSTER]
            for type_url, version in sent.items():  # Envoy ACKs the first push
                cache.record_ack(NODE, type_url, version, {}, snapshot_version=version)
            configs.configure(gateway(9200), {A: "fa"})  # and the endpoints move again
            assert dict(load_regions(store)[NODE].accepted) == {A: "fa"}
        finally:
            configs.close()
