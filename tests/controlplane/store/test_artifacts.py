"""The content-addressed artifact store on a real directory, and the store's references."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from controlplane.store import Store
from controlplane.store.artifacts import ArtifactError, ArtifactStore, Digest, hash_file
from controlplane.store.schema import MIGRATIONS


def _digest(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest(), len(data))


def test_a_file_is_stored_under_its_digest_and_survives_a_reopen(tmp_path: Path) -> None:
    source = tmp_path / "model.pt"
    source.write_bytes(b"weights" * 1000)
    digest = ArtifactStore(tmp_path / "artifacts").add_file(source)
    assert digest == _digest(source.read_bytes())
    source.unlink()  # the registry keeps its own copy

    reopened = ArtifactStore(tmp_path / "artifacts")
    path = reopened.path_of(digest.sha256)
    assert path == tmp_path / "artifacts" / "sha256" / digest.sha256
    assert reopened.verify(digest.sha256) == digest
    assert b"".join(reopened.read(digest.sha256)) == b"weights" * 1000


def test_an_upload_with_the_wrong_checksum_stores_nothing(tmp_path: Path) -> None:
    artifacts = ArtifactStore(tmp_path / "artifacts")
    data = b"the real bytes"
    with artifacts.begin_upload() as upload:
        upload.write(b"the evil bytes")  # same size, other content
        with pytest.raises(ArtifactError) as caught:
            upload.commit(_digest(data))
    message = str(caught.value)
    assert _digest(data).sha256 in message
    assert hashlib.sha256(b"the evil bytes").hexdigest() in message
    assert artifacts.digests() == set()
    assert list(artifacts.tmp_dir.iterdir()) == []


def test_an_upload_of_the_wrong_size_stores_nothing(tmp_path: Path) -> None:
    artifacts = ArtifactStore(tmp_path / "artifacts")
    with artifacts.begin_upload() as upload:
        upload.write(b"short")
        with pytest.raises(ArtifactError, match="5 bytes, expected 6"):
            upload.commit(Digest(_digest(b"short!").sha256, 6))
    assert artifacts.digests() == set()
    assert list(artifacts.tmp_dir.iterdir()) == []


def test_a_file_whose_content_no_longer_matches_its_name_is_reported_and_healed(
    tmp_path: Path,
) -> None:
    artifacts = ArtifactStore(tmp_path / "artifacts")
    source = tmp_path / "m.pt"
    source.write_bytes(b"good")
    digest = artifacts.add_file(source)
    artifacts.path_of(digest.sha256).write_bytes(b"rot!")  # bit rot on disk
    with pytest.raises(ArtifactError, match="corrupted"):
        artifacts.verify(digest.sha256)
    with pytest.raises(ArtifactError, match="corrupted"):
        b"".join(artifacts.read(digest.sha256))
    assert artifacts.add_file(source) == digest  # a good copy replaces the bad one
    assert artifacts.verify(digest.sha256) == digest


def test_unreferenced_artifacts_are_removed_and_unfinished_uploads_cleared(
    tmp_path: Path,
) -> None:
    artifacts = ArtifactStore(tmp_path / "artifacts")
    kept, dropped = tmp_path / "a", tmp_path / "b"
    kept.write_bytes(b"a")
    dropped.write_bytes(b"b")
    keep = artifacts.add_file(kept).sha256
    drop = artifacts.add_file(dropped).sha256
    assert artifacts.remove_unreferenced({keep}) == [drop]
    assert artifacts.digests() == {keep}
    (artifacts.tmp_dir / "upload-crashed").write_bytes(b"half")
    assert artifacts.clear_unfinished_uploads() == 1
    assert hash_file(artifacts.path_of(keep)) == Digest(keep, 1)


def test_malformed_digests_are_refused(tmp_path: Path) -> None:
    artifacts = ArtifactStore(tmp_path / "artifacts")
    for bad in ("", "abc", "../../etc/passwd", "A" * 64):
        with pytest.raises(ArtifactError, match="not a sha256"):
            artifacts.path_of(bad)


def test_migration_3_adds_the_sha256_of_versions(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    with Store.open(db, migrations=MIGRATIONS[:1]):
        pass  # a file written by the previous meshline
    with Store.open(db) as store:
        assert store.artifact_references() == set()
        columns = [row[1] for row in store._conn.execute("PRAGMA table_info(model_versions)")]
        assert "sha256" in columns
