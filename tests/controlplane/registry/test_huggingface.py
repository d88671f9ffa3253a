"""HuggingFace files from a real cache directory layout (no network, no huggingface_hub)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.registry.framework import detect_framework
from controlplane.registry.huggingface import (
    HuggingFaceError,
    hub_cache_dir,
    resolve_cached,
    source_problems,
)
from meshline.v1.resources_pb2 import HuggingFaceSource
from tests.controlplane.registry.files import hf_cache, torchscript_file


@pytest.fixture
def model_bytes(tmp_path: Path) -> bytes:
    return torchscript_file(tmp_path / "m.pt").read_bytes()


def test_a_cached_file_is_found_by_branch_and_by_commit(tmp_path: Path, model_bytes: bytes) -> None:
    cache = tmp_path / "hub"
    commit = hf_cache(cache, "acme/mlp", {"model.pt": model_bytes})
    by_ref = resolve_cached(HuggingFaceSource(repo_id="acme/mlp", filename="model.pt"), cache)
    assert by_ref.read_bytes() == model_bytes
    assert detect_framework(by_ref) == "torchscript"
    by_commit = resolve_cached(
        HuggingFaceSource(repo_id="acme/mlp", filename="model.pt", revision=commit), cache
    )
    assert by_commit == by_ref


@pytest.mark.parametrize(
    ("source", "missing"),
    [
        (HuggingFaceSource(repo_id="acme/other", filename="model.pt"), "no models--acme--other"),
        (
            HuggingFaceSource(repo_id="acme/mlp", filename="model.pt", revision="v2"),
            "no ref 'v2' (cached refs: main)",
        ),
        (HuggingFaceSource(repo_id="acme/mlp", filename="weights.pt"), "no weights.pt in snapshot"),
    ],
)
def test_what_is_not_cached_is_named(
    tmp_path: Path, model_bytes: bytes, source: HuggingFaceSource, missing: str
) -> None:
    cache = tmp_path / "hub"
    hf_cache(cache, "acme/mlp", {"model.pt": model_bytes})
    with pytest.raises(HuggingFaceError) as caught:
        resolve_cached(source, cache)
    message = str(caught.value)
    assert missing in message
    revision = source.revision or "main"
    subject = f"huggingface repo '{source.repo_id}' revision '{revision}' file '{source.filename}'"
    assert subject in message
    assert str(cache) in message and "never the network" in message


def test_a_cleaned_blob_is_not_found(tmp_path: Path, model_bytes: bytes) -> None:
    cache = tmp_path / "hub"
    hf_cache(cache, "acme/mlp", {"model.pt": model_bytes})
    for blob in (cache / "models--acme--mlp" / "blobs").iterdir():
        blob.unlink()
    with pytest.raises(HuggingFaceError, match=r"no model\.pt in snapshot"):
        resolve_cached(HuggingFaceSource(repo_id="acme/mlp", filename="model.pt"), cache)


def test_the_cache_directory_follows_huggingface_hub(tmp_path: Path) -> None:
    assert hub_cache_dir({"HF_HUB_CACHE": "/a", "HF_HOME": "/b"}) == Path("/a")
    assert hub_cache_dir({"HF_HOME": "/b"}) == Path("/b/hub")
    assert hub_cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/huggingface/hub")
    assert hub_cache_dir({}) == Path.home() / ".cache" / "huggingface" / "hub"


def test_malformed_sources_are_named_by_field() -> None:
    bad = HuggingFaceSource(repo_id="a/b/c", filename="../x", revision="/abs")
    assert [field for field, _ in source_problems(bad)] == ["repo_id", "filename", "revision"]
    assert source_problems(HuggingFaceSource(repo_id="gpt2", filename="onnx/m.onnx")) == []


def test_the_framework_is_told_by_the_archive_layout(tmp_path: Path) -> None:
    import torch

    eager = tmp_path / "eager.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), str(eager))
    other = tmp_path / "x.bin"
    other.write_bytes(b"not an archive")
    assert detect_framework(torchscript_file(tmp_path / "ts.pt")) == "torchscript"
    assert detect_framework(eager) == "pytorch"
    assert detect_framework(other) == "unknown"
