"""An agent away from the control plane's disk fetches registry artifacts by sha256.

Real management API (grpc.aio, SQLite, artifact directory) for the pushes, real downloads from
the mesh port (mTLS, the agent's region certificate, as the control plane serves them), and a
real worker started from the fetched file. "Another machine" is a workload whose model_path
does not exist here, which is what such an agent sees.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from controlplane.agents.mesh_services import MeshArtifacts
from controlplane.agents.peers import MeshPeers
from controlplane.api.servicers import ModelServicer
from controlplane.pki import MeshCA, issue_server_certificate, open_ca
from controlplane.ports import mesh_credentials as mesh_server_credentials
from controlplane.store import Store
from meshline.v1 import agent_pb2, api_pb2, api_pb2_grpc
from tests.controlplane.api.test_registry import Registry, push, serving
from tests.harness.mesh_identity import record_identity, region_identity, stranger_ca
from tests.harness.processes import free_port
from tests.workers.agent.helpers import agent_config, states, until, workload
from workers.agent.artifacts import ArtifactCache, ArtifactFetchError
from workers.agent.enrollment import ApiAccess, IdentityKeeper
from workers.agent.identity import Identity, IdentityPaths
from workers.agent.supervisor import Supervisor
from workers.demo import build_mlp

State = agent_pb2.WorkerState


def _elsewhere(sha256: str) -> agent_pb2.Workload:
    """The workload as an agent on another machine gets it: the control plane's path, absent."""
    w = workload(Path("/nonexistent/registry/sha256") / sha256, "r1")
    w.artifact_sha256 = sha256
    return w


async def _pushed(registry: Registry, model: Path) -> str:
    reply = await push(registry, model.read_bytes(), "mlp", "v1")
    return reply.version.sha256


def _agent_identity(
    ca: MeshCA, address: str, state: Path, record_in: Store | None = None
) -> IdentityKeeper:
    """Region r1's agent as after its join: its certificate (made the region's certificate of
    record in `record_in`), and the mesh port's address."""
    made = region_identity(ca, "r1")
    if record_in is not None:
        record_identity(record_in, made)
    identity = Identity("r1", made.chain_pem, made.key_pem, address, datetime.now(UTC))
    no_api = ApiAccess(f"127.0.0.1:{free_port()}")  # renewals are not under test here
    return IdentityKeeper(IdentityPaths.of(state), identity, ca.bundle_pem.decode(), no_api)


@asynccontextmanager
async def mesh_port(registry: Registry, state: Path) -> AsyncIterator[IdentityKeeper]:
    """The control plane's mesh port over the registry's store (DownloadArtifact behind the
    caller's region certificate, as the control plane serves it), and an agent's identity."""
    ca = open_ca(state / "ca", None, datetime.now(UTC))
    server = grpc.aio.server()
    models = MeshArtifacts(
        ModelServicer(registry.store, registry.artifacts), MeshPeers(ca, registry.store)
    )
    api_pb2_grpc.add_ModelServiceServicer_to_server(models, server)
    own = issue_server_certificate(ca, ["127.0.0.1"], datetime.now(UTC))
    port = server.add_secure_port("127.0.0.1:0", mesh_server_credentials(own, ca))
    await server.start()
    try:
        yield _agent_identity(ca, f"127.0.0.1:{port}", state / "agent", registry.store)
    finally:
        await server.stop(None)


@dataclass(frozen=True)
class PlainDialer:
    """Reaches a fake registry in plain text (the cache is under test, not the mesh port)."""

    mesh_address: str

    def channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.mesh_address)


async def test_a_missing_artifact_is_fetched_once_and_checked(tmp_path: Path) -> None:
    model = build_mlp(tmp_path / "m.pt")
    async with serving(tmp_path / "cp") as registry, mesh_port(registry, tmp_path) as mesh:
        sha = await _pushed(registry, model)
        cache = ArtifactCache(tmp_path / "agent" / "artifacts", mesh)
        w = _elsewhere(sha)
        assert cache.local_path(w) is None  # must be fetched
        first = await cache.fetch(sha)
        assert first == cache.path_of(sha) and cache.downloads == 1
        assert hashlib.sha256(first.read_bytes()).hexdigest() == sha
        assert cache.local_path(w) == first
        assert list((cache.root / "tmp").iterdir()) == []
    # Where the control plane's own file is present (same machine), it is used in place.
    here = workload(model, "r1")
    here.artifact_sha256 = sha
    assert cache.local_path(here) == model


async def test_an_unknown_digest_or_an_unreachable_control_plane_names_the_problem(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path / "cp") as registry, mesh_port(registry, tmp_path) as mesh:
        cache = ArtifactCache(tmp_path / "artifacts", mesh)
        with pytest.raises(ArtifactFetchError, match=f"NOT_FOUND: artifact sha256:{'a' * 64}"):
            await cache.fetch("a" * 64)
    gone = ArtifactCache(tmp_path / "artifacts", PlainDialer(f"127.0.0.1:{free_port()}"))
    with pytest.raises(ArtifactFetchError, match="UNAVAILABLE"):
        await gone.fetch("b" * 64)
    assert not gone.path_of("b" * 64).exists()


async def test_a_corrupted_artifact_on_the_control_plane_is_not_cached(tmp_path: Path) -> None:
    model = build_mlp(tmp_path / "m.pt")
    async with serving(tmp_path / "cp") as registry, mesh_port(registry, tmp_path) as mesh:
        sha = await _pushed(registry, model)
        stored = registry.artifacts.path_of(sha)
        data = bytearray(stored.read_bytes())
        data[len(data) // 2] ^= 0xFF  # bit rot on the control plane's disk
        stored.chmod(0o644)
        stored.write_bytes(bytes(data))
        cache = ArtifactCache(tmp_path / "artifacts", mesh)
        with pytest.raises(ArtifactFetchError, match="DATA_LOSS"):
            await cache.fetch(sha)
    assert not cache.path_of(sha).exists()
    assert list((cache.root / "tmp").iterdir()) == []


class FakeRegistry(api_pb2_grpc.ModelServiceServicer):
    """A stand-in for the control plane's ModelService (the agent's cache is under test, not
    the registry): serves `data` for any digest in two chunks, counts downloads, and holds each
    download between its chunks until `release` is set."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.downloads = 0
        self.release = asyncio.Event()
        self.release.set()

    async def DownloadArtifact(
        self, request: api_pb2.DownloadArtifactRequest, context: object
    ) -> AsyncIterator[api_pb2.DownloadArtifactResponse]:
        self.downloads += 1
        half = len(self.data) // 2
        yield api_pb2.DownloadArtifactResponse(chunk=self.data[:half], size_bytes=len(self.data))
        await self.release.wait()
        yield api_pb2.DownloadArtifactResponse(chunk=self.data[half:])


@asynccontextmanager
async def fake_registry(data: bytes) -> AsyncIterator[tuple[FakeRegistry, str]]:
    server = grpc.aio.server()
    fake = FakeRegistry(data)
    api_pb2_grpc.add_ModelServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield fake, f"127.0.0.1:{port}"
    finally:
        fake.release.set()
        await server.stop(None)


async def test_bytes_that_do_not_match_the_digest_are_refused_by_the_agent(
    tmp_path: Path,
) -> None:
    data = build_mlp(tmp_path / "m.pt").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF  # same size, other content: only the hash tells
    async with fake_registry(bytes(flipped)) as (_, address):
        cache = ArtifactCache(tmp_path / "artifacts", PlainDialer(address))
        with pytest.raises(
            ArtifactFetchError, match=f"expected {len(data)} bytes with sha256:{sha}"
        ):
            await cache.fetch(sha)
    assert not cache.path_of(sha).exists()
    assert list((cache.root / "tmp").iterdir()) == []
    with pytest.raises(ArtifactFetchError, match="'nope' is not a sha256 digest"):
        await cache.fetch("nope")


async def test_starts_of_one_artifact_share_one_download(tmp_path: Path) -> None:
    data = build_mlp(tmp_path / "m.pt").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    async with fake_registry(data) as (fake, address):
        fake.release.clear()
        cache = ArtifactCache(tmp_path / "artifacts", PlainDialer(address))
        fetches = [asyncio.create_task(cache.fetch(sha)) for _ in range(3)]
        await until(lambda: fake.downloads == 1, "the download to start")
        await asyncio.sleep(0.1)
        fake.release.set()
        paths = await asyncio.gather(*fetches)
    assert paths == [cache.path_of(sha)] * 3
    assert fake.downloads == 1 and cache.downloads == 1


async def test_a_worker_removed_while_its_model_downloads_never_starts(tmp_path: Path) -> None:
    data = build_mlp(tmp_path / "m.pt").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    async with fake_registry(data) as (fake, address):
        fake.release.clear()
        config = agent_config(tmp_path / "agent")
        sup = Supervisor(config, on_change=lambda: None, mesh=PlainDialer(address))
        task = asyncio.create_task(sup.run())
        try:
            sup.set_desired([_elsewhere(sha)])
            await until(lambda: fake.downloads == 1, "the download to start")
            worker = next(iter(sup.workers.values()))
            assert worker.running and worker.process is None  # starting: model on the way
            assert states(sup) == [("r1", State.WORKER_STATE_STARTING)]
            sup.set_desired([])
            await until(lambda: not sup.workers, "the worker to be removed")
            fake.release.set()
            await until(lambda: sup.artifacts.path_of(sha).exists(), "the download to finish")
            await asyncio.sleep(0.3)  # a launch after the fetch would happen now
            assert worker.process is None and not sup.workers
        finally:
            await sup.stop()
            task.cancel()


async def test_the_supervisor_starts_a_worker_from_a_fetched_artifact(tmp_path: Path) -> None:
    model = build_mlp(tmp_path / "m.pt")
    async with serving(tmp_path / "cp") as registry, mesh_port(registry, tmp_path) as mesh:
        sha = await _pushed(registry, model)
        config = agent_config(tmp_path / "agent")
        sup = Supervisor(config, on_change=lambda: None, mesh=mesh)
        task = asyncio.create_task(sup.run())
        try:
            sup.set_desired([_elsewhere(sha)])
            await until(lambda: states(sup) == [("r1", State.WORKER_STATE_HEALTHY)], "healthy")
            worker = next(iter(sup.workers.values()))
            assert str(sup.artifacts.path_of(sha)) in worker.log_path.read_text()
        finally:
            await sup.stop()
            task.cancel()


async def test_a_fetch_that_fails_is_a_failed_start_with_the_reason(tmp_path: Path) -> None:
    async with serving(tmp_path / "cp") as registry, mesh_port(registry, tmp_path) as mesh:
        config = agent_config(tmp_path / "agent")
        sup = Supervisor(config, on_change=lambda: None, mesh=mesh)
        task = asyncio.create_task(sup.run())
        try:
            sup.set_desired([_elsewhere("c" * 64)])  # the registry has no such artifact
            await until(lambda: any(w.restarts >= 1 for w in sup.workers.values()), "a retry")
            report = sup.report().workers[0]
            assert report.state != State.WORKER_STATE_HEALTHY
            assert report.last_error.startswith("did not start")
            assert "cannot fetch the model" in report.last_error
            assert f"NOT_FOUND: artifact sha256:{'c' * 64} not found" in report.last_error
        finally:
            await sup.stop()
            task.cancel()


async def test_only_a_mesh_certificate_downloads_from_the_mesh_port(tmp_path: Path) -> None:
    """A certificate of another CA (a stranger posing as a region) gets nothing."""
    model = build_mlp(tmp_path / "m.pt")
    async with serving(tmp_path / "cp") as registry, mesh_port(registry, tmp_path) as mesh:
        sha = await _pushed(registry, model)
        stranger = _agent_identity(stranger_ca(), mesh.mesh_address, tmp_path / "stranger")
        stranger.ca_pem = mesh.ca_pem  # it even trusts the mesh's server certificate
        cache = ArtifactCache(tmp_path / "stranger" / "artifacts", stranger)
        with pytest.raises(ArtifactFetchError, match="UNAVAILABLE"):
            await cache.fetch(sha)
        assert not cache.path_of(sha).exists()
        assert (await ArtifactCache(tmp_path / "agent" / "artifacts", mesh).fetch(sha)).exists()
