"""SnapshotCache versioning: unique across epochs, constant while content is unchanged."""

from __future__ import annotations

import pytest

from controlplane.xds import CLUSTER, ENDPOINT, EXTENSION_CONFIG, LISTENER, ROUTE, SnapshotCache
from tests.controlplane.xds import resources as r


def _snapshot(timeout_ms: int = 1000, port: int = 9000) -> r.Resources:
    return r.resources(
        clusters=[r.cluster("a", timeout_ms)],
        assignments=[r.load_assignment("a", [port])],
        listeners=[r.listener("l", 10000, "routes")],
        routes=[r.route_config("routes", "a")],
    )


def _versions(cache: SnapshotCache, node: str) -> dict[str, str | None]:
    return {t: s.snapshot_version for t, s in cache.node_status(node).types.items()}


def test_versions_differ_across_epochs_and_stay_while_unchanged() -> None:
    first, second = SnapshotCache(epoch=1), SnapshotCache(epoch=2)
    first.set_resources("eu", _snapshot())
    second.set_resources("eu", _snapshot())
    v1, v2 = _versions(first, "eu"), _versions(second, "eu")
    assert set(v1) == {CLUSTER, ENDPOINT, EXTENSION_CONFIG, LISTENER, ROUTE}
    for type_url in v1:
        assert v1[type_url] != v2[type_url]
        assert str(v1[type_url]).startswith("1.") and str(v2[type_url]).startswith("2.")

    # Same content again (fresh message objects): no version moves.
    first.set_resources("eu", _snapshot())
    assert _versions(first, "eu") == v1

    # Only the endpoints change: only the EDS version moves, to a never-used value.
    first.set_resources("eu", _snapshot(port=9001))
    v3 = _versions(first, "eu")
    assert v3[ENDPOINT] != v1[ENDPOINT]
    assert v3[ENDPOINT] not in v1.values()
    assert {t: v for t, v in v3.items() if t != ENDPOINT} == {
        t: v for t, v in v1.items() if t != ENDPOINT
    }


def test_versions_are_per_node_and_have_no_reuse() -> None:
    cache = SnapshotCache(epoch=3)
    cache.set_resources("eu", _snapshot())
    cache.set_resources("us", _snapshot())
    assert set(_versions(cache, "eu").values()).isdisjoint(_versions(cache, "us").values())
    assert cache.has_snapshot("eu") and not cache.has_snapshot("asia")


def test_cache_copies_messages_and_rejects_wrong_types() -> None:
    cache = SnapshotCache(epoch=1)
    snap = _snapshot()
    cache.set_resources("eu", snap)
    before = _versions(cache, "eu")
    snap[CLUSTER]["a"].connect_timeout.seconds = 5
    cache.set_resources("eu", _snapshot())
    assert _versions(cache, "eu") == before  # the cache kept its own copy

    with pytest.raises(ValueError, match="not a"):
        cache.set_resources("eu", {CLUSTER: {"x": r.route_config("x", "a")}})
    assert _versions(cache, "eu") == before


def test_remove_node_forgets_snapshot() -> None:
    cache = SnapshotCache(epoch=1)
    cache.set_resources("eu", _snapshot())
    cache.remove_node("eu")
    assert not cache.has_snapshot("eu")
    status = cache.node_status("eu")
    assert not status.connected and dict(status.types) == {}
