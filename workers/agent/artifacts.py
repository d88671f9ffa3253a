"""Registry artifacts on this agent's machine: used in place, or fetched by sha256 and cached.

A version pushed to the registry lives in the control plane's state directory. On the control
plane's machine (or a shared filesystem) a worker loads it from there; an agent elsewhere finds
no such file and fetches the bytes once from the control plane (ModelService.DownloadArtifact on
the mesh port, over mTLS with the region's certificate) into its own content-addressed cache,
`<state>/artifacts/sha256/<hex>`, checking size and sha256 before anything is visible under
that name. Concurrent starts of one artifact share one download.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import grpc

from meshline.v1 import agent_pb2, api_pb2, api_pb2_grpc

log = logging.getLogger(__name__)

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class ArtifactFetchError(Exception):
    """The artifact could not be fetched, or what arrived is not what was asked for."""


class MeshDialer(Protocol):
    """How to reach the control plane's mesh port now (the agent's current certificate)."""

    @property
    def mesh_address(self) -> str: ...

    def channel(self) -> grpc.aio.Channel: ...


class NoMesh:
    """An agent with no mesh identity (tests of local workers): nothing can be fetched."""

    mesh_address = "(no mesh identity)"

    def channel(self) -> grpc.aio.Channel:
        raise ArtifactFetchError("this agent has no mesh identity to fetch artifacts with")


NO_MESH = NoMesh()


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


@dataclass
class ArtifactCache:
    """This agent's copies of registry artifacts, by digest (`downloads`: how many it made)."""

    root: Path
    mesh: MeshDialer  # the control plane's mesh port, dialed with the agent's certificate
    downloads: int = 0
    _downloading: dict[str, asyncio.Task[Path]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Downloads a killed agent left half done: never visible under a digest, gone now.
        shutil.rmtree(self.root / "tmp", ignore_errors=True)

    def path_of(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256

    def local_path(self, workload: agent_pb2.Workload) -> Path | None:
        """Where this machine has the workload's model file; None when it must be fetched."""
        given = Path(workload.model_path)
        if not workload.artifact_sha256 or given.is_file():
            return given  # not a registry artifact, or the control plane's file is here
        if not _DIGEST.match(workload.artifact_sha256):
            return None  # fetch() names the problem
        cached = self.path_of(workload.artifact_sha256)
        return cached if cached.is_file() else None

    async def fetch(self, sha256: str) -> Path:
        """The cached file of `sha256`, downloaded first if needed (one download at a time)."""
        if not _DIGEST.match(sha256):
            raise ArtifactFetchError(f"'{sha256}' is not a sha256 digest (64 lowercase hex)")
        if self.path_of(sha256).is_file():
            return self.path_of(sha256)
        task = self._downloading.get(sha256)
        if task is None:
            task = asyncio.create_task(self._download(sha256), name=f"fetch-{sha256[:12]}")
            self._downloading[sha256] = task
            task.add_done_callback(lambda _: self._downloading.pop(sha256, None))
        return await asyncio.shield(task)

    async def _download(self, sha256: str) -> Path:
        where = f"artifact sha256:{sha256} from the control plane at {self.mesh.mesh_address}"
        temp_dir = self.root / "tmp"
        temp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=temp_dir, prefix=f"{sha256[:12]}-")
        temp = Path(name)
        digest = hashlib.sha256()
        received = 0
        expected_size = 0  # an empty artifact comes as no message at all
        first = True
        started = asyncio.get_running_loop().time()
        self.downloads += 1
        try:
            with os.fdopen(fd, "wb") as out:
                async with self.mesh.channel() as channel:
                    stream = api_pb2_grpc.ModelServiceStub(channel).DownloadArtifact(
                        api_pb2.DownloadArtifactRequest(sha256=sha256)
                    )
                    async for message in stream:
                        if first:
                            expected_size, first = message.size_bytes, False
                        await asyncio.to_thread(_write, out, digest, message.chunk)
                        received += len(message.chunk)
                await asyncio.to_thread(_sync, out)
            if received != expected_size or digest.hexdigest() != sha256:
                raise ArtifactFetchError(
                    f"{where}: got {received} bytes with sha256:{digest.hexdigest()}, "
                    f"expected {expected_size} bytes with sha256:{sha256}"
                )
            final = self.path_of(sha256)
            final.parent.mkdir(parents=True, exist_ok=True)
            temp.replace(final)
        except grpc.aio.AioRpcError as exc:
            raise ArtifactFetchError(f"{where}: {exc.code().name}: {exc.details()}") from exc
        except OSError as exc:  # e.g. the disk is full
            raise ArtifactFetchError(f"{where}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        seconds = asyncio.get_running_loop().time() - started
        log.info("fetched %s (%d bytes) in %.2fs", where, received, seconds)
        return final


def _write(out: BinaryIO, digest: _Hash, chunk: bytes) -> None:
    out.write(chunk)
    digest.update(chunk)


def _sync(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())
