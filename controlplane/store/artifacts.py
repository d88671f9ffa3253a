"""Content-addressed artifact files: `<root>/sha256/<hex>`, written atomically, checked by hash.

Why content-addressed: a version's bytes can never change under its name (a changed file is a
new digest), identical uploads are stored once, and anyone holding the digest can check what
they got. Files are written to `<root>/tmp/` first, fsynced, then renamed into place, so a
crash never leaves a half-written artifact under a digest name.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
_HEX = re.compile(r"^[0-9a-f]{64}$")


class ArtifactError(Exception):
    """An artifact that is missing, malformed, or does not match its digest."""


@dataclass(frozen=True)
class Digest:
    """What identifies an artifact's content."""

    sha256: str
    size_bytes: int


def digest_problem(sha256: str) -> str | None:
    """None for 64 lowercase hex digits, else what is wrong."""
    if _HEX.match(sha256):
        return None
    return f"'{sha256}' is not a sha256 digest (64 lowercase hex digits)"


def hash_file(path: Path) -> Digest:
    """sha256 and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return Digest(digest.hexdigest(), size)


class Upload:
    """An artifact being received: bytes go to a temp file and into the hash as they come.

    Nothing is visible under a digest name until `commit` has checked size and sha256; `discard`
    (also on any exception inside `with`) removes the temp file.
    """

    def __init__(self, store: ArtifactStore) -> None:
        self._store = store
        fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix="upload-")
        self.temp_path = Path(name)
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size_bytes = 0
        self._done = False

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size_bytes += len(chunk)

    @property
    def digest(self) -> Digest:
        """Of the bytes written so far."""
        return Digest(self._hash.hexdigest(), self.size_bytes)

    def commit(self, expected: Digest) -> Path:
        """Check the bytes against `expected` and move them into place; ArtifactError if not."""
        actual = self.digest
        if actual.size_bytes != expected.size_bytes:
            self.discard()
            raise ArtifactError(
                f"upload is {actual.size_bytes} bytes, expected {expected.size_bytes}: "
                "nothing was stored"
            )
        if actual.sha256 != expected.sha256:
            self.discard()
            raise ArtifactError(
                f"checksum mismatch: expected sha256 {expected.sha256}, got {actual.sha256}: "
                "nothing was stored"
            )
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._done = True
        return self._store._install(self.temp_path, actual)

    def discard(self) -> None:
        if self._done:
            return
        self._done = True
        self._file.close()
        self.temp_path.unlink(missing_ok=True)

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


class ArtifactStore:
    """The artifact files of one control plane's state directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "sha256"
        self.tmp_dir = root / "tmp"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def clear_unfinished_uploads(self) -> int:
        """Remove temp files of uploads cut off by a crash (call at start, before serving)."""
        stale = list(self.tmp_dir.iterdir())
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    @classmethod
    def beside(cls, database: Path) -> ArtifactStore:
        """The artifact store of the state directory that holds `database`."""
        return cls(database.parent / "artifacts")

    def path_of(self, sha256: str) -> Path:
        problem = digest_problem(sha256)
        if problem:
            raise ArtifactError(problem)
        return self.blobs / sha256

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def digests(self) -> set[str]:
        return {p.name for p in self.blobs.iterdir() if _HEX.match(p.name)}

    def begin_upload(self) -> Upload:
        return Upload(self)

    def add_file(self, source: Path) -> Digest:
        """Copy `source` in (hashing while copying); its digest."""
        with self.begin_upload() as upload, source.open("rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                upload.write(chunk)
            digest = upload.digest
            upload.commit(digest)
        return digest

    def verify(self, sha256: str) -> Digest:
        """The stored file's digest; ArtifactError when it is missing or its content changed."""
        path = self.path_of(sha256)
        if not path.is_file():
            raise ArtifactError(f"artifact sha256:{sha256} is not in the registry ({path})")
        actual = hash_file(path)
        if actual.sha256 != sha256:
            raise ArtifactError(
                f"artifact {path} is corrupted: its content hashes to {actual.sha256}; "
                "push or apply the version's file again"
            )
        return actual

    def read(self, sha256: str) -> Iterator[bytes]:
        """The stored bytes in chunks; ArtifactError at the end if they did not match."""
        path = self.path_of(sha256)
        if not path.is_file():
            raise ArtifactError(f"artifact sha256:{sha256} is not in the registry")
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                digest.update(chunk)
                yield chunk
        if digest.hexdigest() != sha256:
            raise ArtifactError(f"artifact {path} is corrupted: it hashes to {digest.hexdigest()}")

    def remove(self, sha256: str) -> bool:
        path = self.path_of(sha256)
        if not path.exists():
            return False
        path.unlink()
        return True

    def remove_unreferenced(self, referenced: set[str]) -> list[str]:
        """Delete every artifact not in `referenced`; the digests removed."""
        removed = sorted(self.digests() - referenced)
        for sha256 in removed:
            self.remove(sha256)
            log.info("removed artifact sha256:%s (no version references it)", sha256)
        return removed

    def _install(self, temp: Path, digest: Digest) -> Path:
        """Rename a checked temp file into place. An existing file of that name is kept when
        its content is right, and replaced (reported) when it no longer matches its name."""
        target = self.blobs / digest.sha256
        if target.is_file():
            if hash_file(target).sha256 == digest.sha256:
                temp.unlink(missing_ok=True)
                return target
            log.warning("artifact %s did not match its digest; replaced by the new copy", target)
        os.replace(temp, target)
        _fsync_dir(self.blobs)
        return target


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
