"""The store snapshot and the plan a rebuild makes of it, reused only while neither can differ."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.api import apply_resources
from controlplane.policy.settings import Track
from controlplane.reconcile.plan import plan_network
from controlplane.reconcile.plan_memo import PlanMemo
from controlplane.store import Store
from meshline.keys import DeploymentKey, TrackKey
from tests.controlplane.store.builders import deployment, environment, model, model_file, region


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "state" / "meshline.db") as s:
        path = model_file(tmp_path)
        apply_resources(
            s,
            [
                region("eu", "DE"),
                environment("production"),
                model("mlp", [("v1", path), ("v2", path)]),
                deployment("a", "mlp", "v1"),
            ],
        )
        yield s


KEY = DeploymentKey("production", "a")


def test_nothing_is_read_or_planned_again_while_the_store_stays(store: Store) -> None:
    memo = PlanMemo()
    snapshot = memo.snapshot(store)
    derived = memo.derive(snapshot, {})
    assert memo.snapshot(store) is snapshot
    assert memo.derive(memo.snapshot(store), {}) is derived
    assert memo.derivations == 1
    # The memo's plan is the plan a pass without it makes.
    fresh = plan_network(store.snapshot())
    assert derived.template.workloads == fresh.workloads
    assert derived.template.resolved == fresh.resolved


def test_a_change_in_the_store_is_read_and_planned(store: Store, tmp_path: Path) -> None:
    memo = PlanMemo()
    before = memo.derive(memo.snapshot(store), {})
    apply_resources(store, [deployment("b", "mlp", "v2")])
    snapshot = memo.snapshot(store)
    after = memo.derive(snapshot, {})
    assert snapshot.revision > before.snapshot.revision
    assert after is not before and memo.derivations == 2
    assert TrackKey("production", "b", "") in after.template.workloads
    assert TrackKey("production", "b", "") not in before.template.workloads


def test_other_rollout_tracks_are_planned_again(store: Store) -> None:
    memo = PlanMemo()
    snapshot = memo.snapshot(store)
    plain = memo.derive(snapshot, {})
    canary = {KEY: (Track("", "v1", 90), Track("v2", "v2", 10))}
    split = memo.derive(snapshot, canary)
    assert split is not plain
    assert TrackKey("production", "a", "v2") in split.template.workloads
    assert memo.derive(snapshot, dict(canary)) is split, "equal tracks: the same plan"


def test_each_rebuild_gets_a_state_of_its_own(store: Store) -> None:
    """A rebuild fills in its plan's state; the next rebuild must not start from those."""
    derived = PlanMemo().derive(store.snapshot(), {})
    first = derived.plan()
    first.state.placements[KEY] = ("nowhere",)
    first.state.revisions[KEY]["extra"] = "x"
    first.state.routes[KEY] = {}
    second = derived.plan()
    assert second.state.placements[KEY] == ("eu",)
    assert "extra" not in second.state.revisions[KEY]
    assert second.state.routes == {}


def test_after_a_change_only_what_it_touched_is_resolved_again(
    store: Store, tmp_path: Path
) -> None:
    apply_resources(store, [deployment(f"d{i}", "mlp", "v1") for i in range(20)])
    memo = PlanMemo()
    memo.derive(memo.snapshot(store), {})
    apply_resources(store, [deployment("d3", "mlp", "v2")])
    after = memo.derive(memo.snapshot(store), {})
    resolutions = memo.resolutions  # what the second pass resolved afresh
    assert (resolutions.resolved, resolutions.remembered) == (1, 20)
    # Equal to a plan made from nothing.
    fresh = plan_network(store.snapshot())
    assert after.template.workloads == fresh.workloads
    assert after.template.state.revisions == fresh.state.revisions
    assert (
        after.template.state.revisions[DeploymentKey("production", "d3")]
        != (after.template.state.revisions[DeploymentKey("production", "d4")])
    )
