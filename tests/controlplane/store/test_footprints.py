"""A version's footprint: the largest measurement of its artifact is kept (beside the
resources, no revision bump) and shown on the version."""

from __future__ import annotations

from pathlib import Path

from controlplane.api.versions import register_versions
from controlplane.store import Store
from controlplane.store.artifacts import ArtifactStore
from controlplane.store.footprints import (
    Footprint,
    load_footprints,
    record_footprints,
    with_footprints,
)
from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import Model


def test_the_largest_measurement_is_kept_and_shown_on_the_version(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "meshline.db")
    try:
        revision = store.revision
        first = Footprint("ab", "torch", 200 * 2**20, "eu", "2026-12-06T00:00:00Z")
        record_footprints(store, [first, Footprint("cd", "torch", 0, "eu", "t")])
        record_footprints(store, [Footprint("ab", "torch", 999, "us", "later")])  # smaller
        assert load_footprints(store) == {("ab", "torch"): first}  # unmeasured (0) not kept
        larger = Footprint("ab", "torch", 300 * 2**20, "us", "2026-12-06T00:01:00Z")
        record_footprints(store, [larger])
        assert load_footprints(store) == {("ab", "torch"): larger}
        first = larger
        measured = load_footprints(store)
        assert store.revision == revision  # status, not configuration
        model = Model()
        model.spec.versions.add(name="v1", runtime="torch", sha256="ab")
        model.spec.versions.add(name="v2", runtime="triton", sha256="ab")  # another runtime
        shown = with_footprints(model, measured)
        assert shown.spec.versions[0].footprint.memory_bytes == 300 * 2**20
        assert shown.spec.versions[0].footprint.region == "us"
        assert not shown.spec.versions[1].HasField("footprint")
        assert not model.spec.versions[0].HasField("footprint")  # the stored one is untouched
    finally:
        store.close()


def test_a_footprint_in_an_applied_document_is_the_servers_to_set(tmp_path: Path) -> None:
    """`get model -o yaml` shows it; applying that output again stores none."""
    artifact = tmp_path / "m.pt"
    artifact.write_bytes(b"not really torchscript")
    model = Model()
    model.metadata.name = "m"
    version = model.spec.versions.add(name="v1", runtime="torch", path=str(artifact))
    version.footprint.memory_bytes = 123
    store = Store.open(tmp_path / "meshline.db")
    try:
        [registered] = register_versions(
            [Resource(model=model)], store.snapshot(), ArtifactStore(tmp_path / "artifacts")
        )
    finally:
        store.close()
    assert not registered.model.spec.versions[0].HasField("footprint")
    assert registered.model.spec.versions[0].sha256  # registered, not refused
