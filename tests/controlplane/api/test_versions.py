"""Apply-time registration of versions from a local path or the HuggingFace cache."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.api import ApplyError, apply_resources
from controlplane.reconcile import plan_network, workload_revision
from controlplane.store import Store
from controlplane.store.artifacts import ArtifactStore
from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import HuggingFaceSource
from tests.controlplane.registry.files import hf_cache, torchscript_file
from tests.controlplane.store.builders import deployment, environment, model, region


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "state" / "meshline.db") as s:
        apply_resources(s, [region("eu", "DE"), environment("production")])
        yield s


@pytest.fixture
def artifacts(store: Store) -> ArtifactStore:
    return ArtifactStore.beside(store.path)


@pytest.fixture
def model_pt(tmp_path: Path) -> Path:
    return torchscript_file(tmp_path / "model.pt")


def _errors(store: Store, docs: list[Resource]) -> list[str]:
    with pytest.raises(ApplyError) as caught:
        apply_resources(store, docs)
    return [str(e) for e in caught.value.errors]


def test_a_path_version_is_copied_into_the_registry_and_workers_load_the_copy(
    store: Store, artifacts: ArtifactStore, model_pt: Path
) -> None:
    apply_resources(store, [model("mlp", [("v1", model_pt)]), deployment("mlp", "mlp", "v1")])
    [version] = store.get_model("mlp").spec.versions
    sha = hashlib.sha256(model_pt.read_bytes()).hexdigest()
    assert version.path == str(model_pt), "the origin stays as written"
    assert (version.sha256, version.size_bytes) == (sha, model_pt.stat().st_size)
    assert version.framework == "torchscript" and version.created_at
    assert version.artifact_path == str(artifacts.path_of(sha))
    workload = plan_network(store.snapshot()).workloads[("production", "mlp", "")]
    assert workload.model_path == version.artifact_path


def test_reapplying_is_unchanged_and_keeps_created_at(store: Store, model_pt: Path) -> None:
    docs = [model("mlp", [("v1", model_pt)]), deployment("mlp", "mlp", "v1")]
    apply_resources(store, docs)
    created = store.get_model("mlp").spec.versions[0].created_at
    revision = store.revision
    results = apply_resources(store, docs)
    assert [r.action for r in results] == ["unchanged", "unchanged"]
    assert store.revision == revision
    assert store.get_model("mlp").spec.versions[0].created_at == created


def test_a_changed_file_under_a_registered_version_is_an_error(
    store: Store, artifacts: ArtifactStore, model_pt: Path
) -> None:
    apply_resources(store, [model("mlp", [("v1", model_pt)])])
    before = store.get_model("mlp")
    old_sha = before.spec.versions[0].sha256
    torchscript_file(model_pt, seed=5)  # retrained, saved over the same file
    new_sha = hashlib.sha256(model_pt.read_bytes()).hexdigest()
    [line] = _errors(store, [model("mlp", [("v1", model_pt)])])
    assert line.startswith(
        "model 'mlp' version 'v1': spec.versions[0].path: versions are immutable"
    )
    assert old_sha in line and new_sha in line and "as a new version" in line
    assert store.get_model("mlp") == before
    assert artifacts.digests() == {old_sha}, "the rejected content is not kept"
    # As a new version it is fine; v1, pinned by its sha256 (as `get -o yaml` prints it),
    # keeps serving the registered bytes, and both artifacts are kept.
    doc = model("mlp", [("v1", model_pt), ("v2", model_pt)])
    doc.model.spec.versions[0].sha256 = old_sha
    apply_resources(store, [doc])
    assert [v.sha256 for v in store.get_model("mlp").spec.versions] == [old_sha, new_sha]
    assert artifacts.digests() == {old_sha, new_sha}


def test_the_stored_document_applies_back_even_when_the_origin_file_is_gone(
    store: Store, model_pt: Path
) -> None:
    apply_resources(store, [model("mlp", [("v1", model_pt)])])
    stored = store.get_model("mlp")
    model_pt.unlink()
    assert [r.action for r in apply_resources(store, [Resource(model=stored)])] == ["unchanged"]
    # Without its sha256 the missing file is still an error, as before the registry.
    assert _errors(store, [model("mlp", [("v1", model_pt)])]) == [
        f"model 'mlp' version 'v1': spec.versions[0].path: file {model_pt} does not exist"
    ]


def test_a_pinned_sha256_must_match_the_file(store: Store, model_pt: Path) -> None:
    doc = model("mlp", [("v1", model_pt)])
    doc.model.spec.versions[0].sha256 = "0" * 64
    [line] = _errors(store, [doc])
    actual = hashlib.sha256(model_pt.read_bytes()).hexdigest()
    assert f"checksum mismatch: expected sha256 {'0' * 64}, {model_pt} has {actual}" in line


def test_a_dry_run_copies_nothing(store: Store, artifacts: ArtifactStore, model_pt: Path) -> None:
    apply_resources(store, [model("mlp", [("v1", model_pt)])], dry_run=True)
    assert artifacts.digests() == set()


def test_dropping_a_version_removes_its_artifact(
    store: Store, artifacts: ArtifactStore, model_pt: Path, tmp_path: Path
) -> None:
    other = torchscript_file(tmp_path / "other.pt", seed=2)
    apply_resources(store, [model("mlp", [("v1", model_pt), ("v2", other)])])
    v1, _ = store.get_model("mlp").spec.versions
    apply_resources(store, [model("mlp", [("v1", model_pt)])])
    assert artifacts.digests() == {v1.sha256}


def test_registry_metadata_does_not_change_a_workers_revision(store: Store, model_pt: Path) -> None:
    apply_resources(store, [model("mlp", [("v1", model_pt)])])
    version = store.get_model("mlp").spec.versions[0]
    later = type(version)()
    later.CopyFrom(version)
    later.created_at = "2031-01-01T00:00:00.000Z"
    later.framework = "unknown"
    later.artifact_path = "/elsewhere"
    assert workload_revision(later) == workload_revision(version)
    renamed = type(version)()
    renamed.CopyFrom(version)
    renamed.path = "/another/model.pt"
    assert workload_revision(renamed) != workload_revision(version)


def _hf_model(name: str, revision: str = "") -> Resource:
    doc = model(name, [("v1", "")])
    version = doc.model.spec.versions[0]
    version.ClearField("path")
    version.huggingface.CopyFrom(
        HuggingFaceSource(repo_id="acme/mlp", filename="model.pt", revision=revision)
    )
    return doc


def test_a_huggingface_version_is_resolved_from_the_local_cache(
    store: Store,
    artifacts: ArtifactStore,
    model_pt: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = tmp_path / "hf" / "hub"
    hf_cache(cache, "acme/mlp", {"model.pt": model_pt.read_bytes()})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    apply_resources(store, [_hf_model("mlp"), deployment("mlp", "mlp", "v1")])
    [version] = store.get_model("mlp").spec.versions
    assert version.sha256 == hashlib.sha256(model_pt.read_bytes()).hexdigest()
    assert version.framework == "torchscript" and not version.path
    # The registry's copy survives a cache cleanup, and re-applying names it by sha256.
    for blob in (cache / "models--acme--mlp" / "blobs").iterdir():
        blob.unlink()
    assert artifacts.verify(version.sha256).size_bytes == version.size_bytes
    stored = store.get_model("mlp")
    assert [r.action for r in apply_resources(store, [Resource(model=stored)])] == ["unchanged"]


def test_a_huggingface_version_not_in_the_cache_is_a_clear_error(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "empty-hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    [line] = _errors(store, [_hf_model("mlp", revision="v3")])
    assert line.startswith(
        "model 'mlp' version 'v1': spec.versions[0].huggingface: huggingface repo 'acme/mlp' "
        f"revision 'v3' file 'model.pt' is not in the local HuggingFace cache {cache}"
    )
    assert "never the network" in line
    assert store.list_models() == []


def test_a_huggingface_version_with_a_path_too_is_refused(store: Store, model_pt: Path) -> None:
    doc = _hf_model("mlp")
    doc.model.spec.versions[0].path = str(model_pt)
    assert _errors(store, [doc]) == [
        "model 'mlp' version 'v1': spec.versions[0].path: give path or huggingface, not both"
    ]
