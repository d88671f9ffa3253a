"""Files written whole: a secret one is its owner's from the first byte, a public one anyone may
read, and neither leaves a partial file behind."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshline.secret_file import write_public_file, write_secret_file


@pytest.fixture
def strict_umask() -> Iterator[None]:
    """A umask that would make every new file its owner's only (0600)."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_secret_file_is_the_owners_only(tmp_path: Path) -> None:
    path = write_secret_file(tmp_path / "new" / "token", "s3cret\n")
    assert path.read_text() == "s3cret\n"
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["token"]


@pytest.mark.parametrize("content", ["-----BEGIN CERTIFICATE-----\n", b"\x30\x82bundle"])
def test_a_public_file_may_be_read_by_anyone(
    tmp_path: Path, strict_umask: None, content: str | bytes
) -> None:
    path = write_public_file(tmp_path / "new" / "ca.crt", content)
    data = content.encode() if isinstance(content, str) else content
    assert path.read_bytes() == data
    assert _mode(path) == 0o644, "0644 whatever the umask"
    assert _mode(path.parent) == 0o700, "a new parent is the owner's only"
    assert sorted(p.name for p in path.parent.iterdir()) == ["ca.crt"]


def test_a_public_file_that_holds_the_content_already_is_left_alone(tmp_path: Path) -> None:
    path = write_public_file(tmp_path / "ca.crt", "bundle\n")
    before = path.stat().st_ino
    write_public_file(path, b"bundle\n")
    assert path.stat().st_ino == before, "not replaced: a watcher sees no change"
    write_public_file(path, "another bundle\n")
    assert path.stat().st_ino != before, "replaced by a rename"
    assert path.read_text() == "another bundle\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.crt"]


def test_a_secret_file_over_a_public_one_is_the_owners_only(tmp_path: Path) -> None:
    path = write_public_file(tmp_path / "file", "public\n")
    write_secret_file(path, "secret\n")
    assert path.read_text() == "secret\n" and _mode(path) == 0o600
