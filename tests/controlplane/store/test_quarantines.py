"""What each region's Envoy accepted and rejected is kept in the store (shared by replicas)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from controlplane.store import Store
from controlplane.store.quarantines import Quarantine, RegionRecord, load_regions, save_region

A, B = ("production", "a"), ("production", "b")
REJECTED = Quarantine("fb", "type.googleapis.com/envoy.config.cluster.v3.Cluster", "7.5", "bad")


def test_each_region_is_saved_and_loaded_on_its_own(tmp_path: Path) -> None:
    with Store.open(tmp_path / "meshline.db") as store:
        revision = store.revision
        save_region(store, "eu", RegionRecord({A: "fa"}, {A: "{}"}, {B: REJECTED}))
        save_region(store, "us", RegionRecord({A: "fa", B: "fb"}, {A: "a-form", B: "b-form"}))
        save_region(store, "eu", RegionRecord({A: "fa2"}, {A: "a-form2"}))  # replaces eu only
        assert store.revision == revision  # not user configuration: no revision bump
    with Store.open(tmp_path / "meshline.db") as store:  # another replica, or a restart
        regions = load_regions(store)
    got = {r: (dict(x.accepted), dict(x.forms), dict(x.quarantined)) for r, x in regions.items()}
    assert got == {
        "eu": ({A: "fa2"}, {A: "a-form2"}, {}),
        "us": ({A: "fa", B: "fb"}, {A: "a-form", B: "b-form"}, {}),
    }


def test_a_quarantine_without_a_baseline_is_kept(tmp_path: Path) -> None:
    with Store.open(tmp_path / "meshline.db") as store:
        save_region(store, "eu", RegionRecord(quarantined={B: replace(REJECTED, kept="v1")}))
        assert dict(load_regions(store)["eu"].quarantined) == {B: replace(REJECTED, kept="v1")}
        save_region(store, "eu", RegionRecord())
        assert load_regions(store) == {}
