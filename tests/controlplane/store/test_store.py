"""The SQLite store: round trips, durability, all-or-nothing apply, dependencies, schema."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.store import (
    CONFIGURED,
    CREATED,
    DELETED,
    MIGRATIONS,
    UNCHANGED,
    ChangeEvent,
    DependencyError,
    InvalidApplyError,
    Migration,
    NotFoundError,
    ResourceKey,
    SchemaVersionError,
    Store,
    StoreError,
    wrap,
)
from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import RegionSpec
from tests.controlplane.store.builders import (
    deployment,
    environment,
    location,
    model,
    model_file,
    region,
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "meshline.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store.open(db_path) as s:
        yield s


def _everything(tmp_path: Path) -> list[Resource]:
    artifact = model_file(tmp_path)
    return [
        region("eu", "DE"),
        region("us", "US"),
        environment("production", [location(regions=["eu"], mode="mandatory")]),
        model("mnist", [("v1", artifact), ("v2", artifact)], labels={"team": "vision"}),
        deployment("mnist", "mnist", "v1", replicas=2, policies=[location(countries=["DE"])]),
    ]


def test_round_trip_of_every_kind(store: Store, tmp_path: Path) -> None:
    docs = _everything(tmp_path)
    results = store.apply(docs)

    assert [(r.kind, r.name, r.action, r.generation) for r in results] == [
        ("Region", "eu", CREATED, 1),
        ("Region", "us", CREATED, 1),
        ("Environment", "production", CREATED, 1),
        ("Model", "mnist", CREATED, 1),
        ("Deployment", "mnist", CREATED, 1),
    ]
    assert results[4].environment == "production"
    got_model = store.get_model("mnist")
    assert got_model.spec == docs[3].model.spec
    assert dict(got_model.metadata.labels) == {"team": "vision"}
    assert got_model.metadata.generation == 1
    assert got_model.metadata.created_at.endswith("Z")
    assert got_model.metadata.created_at == got_model.metadata.updated_at
    assert store.get_environment("production").spec == docs[2].environment.spec
    assert store.get_region("eu").spec.country == "DE"
    assert store.get_deployment("production", "mnist").spec == docs[4].deployment.spec
    assert [m.metadata.name for m in store.list_models()] == ["mnist"]
    assert [e.metadata.name for e in store.list_environments()] == ["production"]
    assert [r.metadata.name for r in store.list_regions()] == ["eu", "us"]
    assert [d.metadata.name for d in store.list_deployments()] == ["mnist"]
    assert [d.metadata.name for d in store.list_deployments("production")] == ["mnist"]
    assert store.list_deployments("staging") == []


def test_snapshot_holds_everything_at_one_revision(store: Store, tmp_path: Path) -> None:
    store.apply(_everything(tmp_path))
    snap = store.snapshot()
    assert snap.revision == store.revision == 1
    assert snap.epoch == store.epoch
    assert [m.metadata.name for m in snap.models] == ["mnist"]
    assert [e.metadata.name for e in snap.environments] == ["production"]
    assert [d.metadata.name for d in snap.deployments] == ["mnist"]
    assert [r.metadata.name for r in snap.regions] == ["eu", "us"]


def test_generation_counts_spec_changes_only(store: Store, tmp_path: Path) -> None:
    store.apply(_everything(tmp_path))
    revision = store.revision

    again = store.apply(_everything(tmp_path))
    assert {r.action for r in again} == {UNCHANGED}
    assert store.revision == revision

    relabeled = model("mnist", [("v1", model_file(tmp_path)), ("v2", model_file(tmp_path))])
    [result] = store.apply([relabeled])
    assert (result.action, result.generation) == (CONFIGURED, 1)
    assert dict(store.get_model("mnist").metadata.labels) == {}

    scaled = deployment("mnist", "mnist", "v1", replicas=3, policies=[location(countries=["DE"])])
    [result] = store.apply([scaled])
    assert (result.action, result.generation) == (CONFIGURED, 2)
    stored = store.get_deployment("production", "mnist")
    assert stored.metadata.generation == 2
    assert stored.spec.replicas == 3
    assert store.revision == revision + 2


def test_server_set_fields_in_a_document_are_not_changes(store: Store, tmp_path: Path) -> None:
    store.apply(_everything(tmp_path))
    fetched = store.get_deployment("production", "mnist")
    fetched.status.phase = "Ready"
    fetched.metadata.generation = 42
    [result] = store.apply([wrap(fetched)])
    assert result.action == UNCHANGED
    assert store.get_deployment("production", "mnist").metadata.generation == 1


def test_deployment_without_environment_lands_in_production(store: Store, tmp_path: Path) -> None:
    store.apply(_everything(tmp_path))
    [result] = store.apply([deployment("other", "mnist", "v2", environment_name="")])
    assert result.environment == "production"
    assert store.get_deployment("", "other").spec.environment == "production"


def test_close_and_reopen_keeps_everything(db_path: Path, tmp_path: Path) -> None:
    with Store.open(db_path) as first:
        first.apply(_everything(tmp_path))
        before = first.snapshot()
        first_epoch = first.epoch
    with Store.open(db_path) as second:
        after = second.snapshot()
        assert second.epoch == first_epoch + 1
        assert after.revision == before.revision
        assert after.models == before.models
        assert after.environments == before.environments
        assert after.deployments == before.deployments
        assert after.regions == before.regions


def test_open_creates_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "state" / "deep" / "meshline.db"
    with Store.open(path) as s:
        s.ensure_region("eu", RegionSpec(country="DE"))
    assert path.is_file()


def test_epoch_increments_at_every_open(db_path: Path) -> None:
    epochs = []
    for _ in range(3):
        with Store.open(db_path) as s:
            epochs.append(s.epoch)
    assert epochs == [1, 2, 3]


def test_file_uses_wal_and_a_schema_version(store: Store, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    finally:
        conn.close()


def test_apply_is_all_or_nothing(store: Store, tmp_path: Path) -> None:
    docs = [
        model("mnist", [("v1", model_file(tmp_path))]),
        deployment("mnist", "mnist", "v1", environment_name="nowhere"),
    ]
    with pytest.raises(InvalidApplyError, match="environment 'nowhere' does not exist"):
        store.apply(docs)
    assert store.list_models() == []
    assert store.revision == 0


def test_apply_refuses_a_document_given_twice(store: Store) -> None:
    with pytest.raises(InvalidApplyError, match="appears twice"):
        store.apply([region("eu"), region("eu", "DE")])
    assert store.list_regions() == []


def test_dry_run_stores_nothing_but_tells_the_actions(store: Store, tmp_path: Path) -> None:
    results = store.apply(_everything(tmp_path), dry_run=True)
    assert {r.action for r in results} == {CREATED}
    assert store.snapshot().models == ()
    assert store.revision == 0


def test_delete_refuses_what_a_deployment_uses(store: Store, tmp_path: Path) -> None:
    store.apply(_everything(tmp_path))
    with pytest.raises(DependencyError, match="model 'mnist' is used by deployment 'mnist'"):
        store.delete_model("mnist")
    with pytest.raises(DependencyError, match="environment 'production' is used by deployment"):
        store.delete_environment("production")

    store.delete_deployment("production", "mnist")
    store.delete_model("mnist")
    store.delete_environment("production")
    store.delete_region("us")
    assert store.list_models() == []
    assert store.list_environments() == []
    assert [r.metadata.name for r in store.list_regions()] == ["eu"]


def test_delete_of_many_is_all_or_nothing_with_dependents_first(
    store: Store, tmp_path: Path
) -> None:
    store.apply(_everything(tmp_path))
    events: list[ChangeEvent] = []
    store.add_listener(events.append)
    before = store.revision
    # The model cannot go while the (unnamed) deployment stays: nothing goes.
    with pytest.raises(DependencyError, match="model 'mnist' is used by deployment 'mnist'"):
        store.delete([ResourceKey("Model", "mnist"), ResourceKey("Environment", "production")])
    with pytest.raises(NotFoundError, match="region 'nowhere'"):
        store.delete(
            [ResourceKey("Deployment", "mnist", "production"), ResourceKey("Region", "nowhere")]
        )
    assert store.revision == before and events == []
    assert [m.metadata.name for m in store.list_models()] == ["mnist"]
    assert len(store.list_deployments()) == 1

    # Named in any order: the deployment goes before its model and environment.
    store.delete(
        [
            ResourceKey("Environment", "production"),
            ResourceKey("Model", "mnist"),
            ResourceKey("Deployment", "mnist", "production"),
        ]
    )
    assert store.list_models() == [] and store.list_deployments() == []
    assert store.list_environments() == []
    assert [(e.revision, [c.key.kind for c in e.changes]) for e in events] == [
        (before + 1, ["Deployment", "Model", "Environment"])
    ]


def test_dropping_a_used_version_is_refused(store: Store, tmp_path: Path) -> None:
    store.apply(_everything(tmp_path))
    only_v2 = model("mnist", [("v2", model_file(tmp_path))])
    with pytest.raises(DependencyError, match="model 'mnist' version 'v1' is used by deployment"):
        store.apply([only_v2])
    assert len(store.get_model("mnist").spec.versions) == 2

    # Moving the deployment to v2 in the same apply makes it fine.
    moved = deployment("mnist", "mnist", "v2", policies=[location(countries=["DE"])])
    store.apply([only_v2, moved])
    assert [v.name for v in store.get_model("mnist").spec.versions] == ["v2"]


def test_missing_things_are_not_found(store: Store) -> None:
    for call in (
        lambda: store.get_model("x"),
        lambda: store.get_environment("x"),
        lambda: store.get_deployment("production", "x"),
        lambda: store.get_region("x"),
        lambda: store.delete_model("x"),
        lambda: store.delete_environment("x"),
        lambda: store.delete_deployment("production", "x"),
        lambda: store.delete_region("x"),
    ):
        with pytest.raises(NotFoundError, match="'x'"):
            call()


def test_ensure_region_registers_once_and_keeps_what_exists(store: Store) -> None:
    assert store.ensure_region("eu", RegionSpec(country="DE")) is True
    revision = store.revision
    assert store.ensure_region("eu", RegionSpec(country="FR")) is False
    assert store.get_region("eu").spec.country == "DE"
    assert store.revision == revision
    with pytest.raises(ValueError, match="DNS-1123"):
        store.ensure_region("Not_A_Name", RegionSpec(country="DE"))


def test_listeners_hear_each_commit(store: Store, tmp_path: Path) -> None:
    events: list[ChangeEvent] = []
    remove = store.add_listener(events.append)
    store.apply(_everything(tmp_path))
    store.apply(_everything(tmp_path))  # unchanged: no event
    store.delete_deployment("production", "mnist")
    store.ensure_region("asia", RegionSpec(country="JP"))
    remove()
    store.delete_region("asia")

    assert [e.revision for e in events] == [1, 2, 3]
    assert [(c.key.kind, c.action) for c in events[0].changes] == [
        ("Region", CREATED),
        ("Region", CREATED),
        ("Environment", CREATED),
        ("Model", CREATED),
        ("Deployment", CREATED),
    ]
    assert events[1].changes[0].key == ResourceKey("Deployment", "mnist", "production")
    assert events[1].changes[0].action == DELETED
    assert events[2].changes[0].key == ResourceKey("Region", "asia")


def test_a_failing_listener_does_not_break_the_store(store: Store) -> None:
    def broken(event: ChangeEvent) -> None:
        raise RuntimeError("boom")

    seen: list[int] = []
    store.add_listener(broken)
    store.add_listener(lambda e: seen.append(e.revision))
    store.ensure_region("eu", RegionSpec(country="DE"))
    assert seen == [1]


async def test_waiting_for_a_revision(store: Store) -> None:
    waiter = asyncio.create_task(store.wait_for_revision(0))
    await asyncio.sleep(0)  # let it start waiting
    assert not waiter.done()
    store.ensure_region("eu", RegionSpec(country="DE"))
    assert await asyncio.wait_for(waiter, 10) == 1
    # Already past: returns at once.
    assert await store.wait_for_revision(0) == 1


async def test_a_commit_in_another_thread_wakes_the_waiter(store: Store) -> None:
    waiter = asyncio.create_task(store.wait_for_revision(store.revision))
    await asyncio.sleep(0)
    await asyncio.to_thread(store.ensure_region, "us", RegionSpec(country="US"))
    assert await asyncio.wait_for(waiter, 10) == 1


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    with Store.open(db_path):
        pass
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(SchemaVersionError, match="schema version 99 is newer"):
        Store.open(db_path)


def test_migrations_run_in_order_once(db_path: Path) -> None:
    with Store.open(db_path, migrations=MIGRATIONS) as s:
        s.ensure_region("eu", RegionSpec(country="DE"))
    extra = Migration(
        len(MIGRATIONS) + 1,
        "test: an extra table",
        ("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)",),
    )
    with Store.open(db_path, migrations=(*MIGRATIONS, extra)) as s:
        assert s.get_region("eu").spec.country == "DE"
    with Store.open(db_path, migrations=(*MIGRATIONS, extra)):
        pass  # already at the version: the CREATE TABLE does not run twice
    with pytest.raises(SchemaVersionError):
        Store.open(db_path)


def test_migrations_out_of_order_are_a_bug(db_path: Path) -> None:
    bad = Migration(len(MIGRATIONS) + 2, "wrong number", ())
    with pytest.raises(ValueError, match="out of order"):
        Store.open(db_path, migrations=(*MIGRATIONS, bad))


def test_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite " * 100)
    with pytest.raises(StoreError, match="not a meshline store"):
        Store.open(path)
