"""Quarantines on disk: what a restarted control plane starts from."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.quarantine import file
from controlplane.quarantine.decide import Quarantine

Q = Quarantine("f1", "type.googleapis.com/envoy.config.cluster.v3.Cluster", "7.5", "bad\nvalue")


def test_what_is_saved_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "state" / file.FILE_NAME
    saved = {"eu": {("production", "b"): Q}, "us": {("dev", "c"): Q, ("production", "b"): Q}}
    file.save(path, saved)
    assert file.load(path) == saved
    assert not path.with_name(path.name + ".tmp").exists()


def test_a_missing_file_means_none(tmp_path: Path) -> None:
    assert file.load(tmp_path / file.FILE_NAME) == {}


@pytest.mark.parametrize(
    "text",
    ["{not json", '{"format": 99, "quarantines": []}', '{"format": 1, "quarantines": [{}]}', "[]"],
)
def test_an_unreadable_file_is_ignored_with_a_warning(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / file.FILE_NAME
    path.write_text(text)
    assert file.load(path) == {}
    assert str(path) in caplog.text
