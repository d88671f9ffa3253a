"""An agent away from the control plane's disk fetches registry artifacts by sha256.

Real management API (grpc.aio, SQLite, artifact directory), real pushes, real downloads, and a
real worker started from the fetched file. "Another machine" is a workload whose model_path
does not exist here, which is what such an agent sees.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from meshline.v1 import agent_pb2
from tests.controlplane.api.test_registry import Registry, push, serving
from tests.harness.processes import free_port
from tests.workers.agent.helpers import agent_config, states, until, workload
from workers.agent.artifacts import ArtifactCache, ArtifactFetchError
from workers.agent.supervisor import Supervisor
from workers.demo import build_mlp

State = agent_pb2.WorkerState


def _elsewhere(model: Path, sha256: str) -> agent_pb2.Workload:
    """The workload as an agent on another machine gets it: the control plane's path, absent."""
    w = workload(Path("/nonexistent/registry/sha256") / sha256, "r1")
    w.artifact_sha256 = sha256
    return w


async def _pushed(registry: Registry, model: Path) -> str:
    reply = await push(registry, model.read_bytes(), "mlp", "v1")
    return reply.version.sha256


async def test_a_missing_artifact_is_fetched_once_and_checked(tmp_path: Path) -> None:
    model = build_mlp(tmp_path / "m.pt")
    async with serving(tmp_path / "cp") as registry:
        sha = await _pushed(registry, model)
        cache = ArtifactCache(tmp_path / "agent" / "artifacts", registry.address)
        w = _elsewhere(model, sha)
        assert cache.local_path(w) is None  # must be fetched
        # Two starts at once share one download.
        first, second = await asyncio.gather(cache.fetch(sha), cache.fetch(sha))
        assert first == second == cache.path_of(sha)
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
    async with serving(tmp_path / "cp") as registry:
        cache = ArtifactCache(tmp_path / "artifacts", registry.address)
        with pytest.raises(ArtifactFetchError, match=f"NOT_FOUND: artifact sha256:{'a' * 64}"):
            await cache.fetch("a" * 64)
    gone = ArtifactCache(tmp_path / "artifacts", f"127.0.0.1:{free_port()}")
    with pytest.raises(ArtifactFetchError, match="UNAVAILABLE"):
        await gone.fetch("b" * 64)
    assert not gone.path_of("b" * 64).exists()


async def test_a_corrupted_artifact_is_not_cached(tmp_path: Path) -> None:
    model = build_mlp(tmp_path / "m.pt")
    async with serving(tmp_path / "cp") as registry:
        sha = await _pushed(registry, model)
        stored = registry.artifacts.path_of(sha)
        data = bytearray(stored.read_bytes())
        data[len(data) // 2] ^= 0xFF  # bit rot on the control plane's disk
        stored.chmod(0o644)
        stored.write_bytes(bytes(data))
        cache = ArtifactCache(tmp_path / "artifacts", registry.address)
        with pytest.raises(ArtifactFetchError, match=r"DATA_LOSS|expected"):
            await cache.fetch(sha)
    assert not cache.path_of(sha).exists()
    assert list((cache.root / "tmp").iterdir()) == []


async def test_the_supervisor_starts_a_worker_from_a_fetched_artifact(tmp_path: Path) -> None:
    model = build_mlp(tmp_path / "m.pt")
    async with serving(tmp_path / "cp") as registry:
        sha = await _pushed(registry, model)
        config = replace(agent_config(tmp_path / "agent"), controlplane=registry.address)
        sup = Supervisor(config, on_change=lambda: None)
        task = asyncio.create_task(sup.run())
        try:
            sup.set_desired([_elsewhere(model, sha)])
            await until(lambda: states(sup) == [("r1", State.WORKER_STATE_HEALTHY)], "healthy")
            worker = next(iter(sup.workers.values()))
            assert str(sup.artifacts.path_of(sha)) in worker.log_path.read_text()
        finally:
            await sup.stop()
            task.cancel()


async def test_a_fetch_that_fails_is_a_failed_start_with_the_reason(tmp_path: Path) -> None:
    model = build_mlp(tmp_path / "m.pt")
    async with serving(tmp_path / "cp") as registry:
        config = replace(agent_config(tmp_path / "agent"), controlplane=registry.address)
        sup = Supervisor(config, on_change=lambda: None)
        task = asyncio.create_task(sup.run())
        try:
            sup.set_desired([_elsewhere(model, "c" * 64)])  # the registry has no such artifact
            await until(lambda: any(w.restarts >= 1 for w in sup.workers.values()), "a retry")
            report = sup.report().workers[0]
            assert report.state != State.WORKER_STATE_HEALTHY
            assert "cannot fetch the model" in report.last_error
            assert f"NOT_FOUND: artifact sha256:{'c' * 64} not found" in report.last_error
        finally:
            await sup.stop()
            task.cancel()
