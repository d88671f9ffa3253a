"""The model registry through a real grpc.aio server: push, list, inspect, delete, download.

Real SQLite file, real artifact directory, real TorchScript files; a "restart" closes the
server and the store and opens both again on the same state directory.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from controlplane.api import add_api_to_server
from controlplane.store import Store
from controlplane.store.artifacts import ArtifactStore
from controlplane.store.rollouts import save_rollout
from meshline.v1 import api_pb2 as api
from meshline.v1 import api_pb2_grpc
from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import ModelSignature, ModelVersion, Rollout, TensorSpec
from tests.controlplane.api.test_servicers import StaticStatusProvider
from tests.controlplane.registry.files import torchscript_file
from tests.controlplane.store.builders import deployment, environment, region
from tests.harness.credentials import admin_aio_channel, guarded_server

CHUNK = 1000  # small chunks: a push is many messages even for a small file


@dataclass
class Registry:
    store: Store
    artifacts: ArtifactStore
    apply: api_pb2_grpc.ApplyServiceStub
    models: api_pb2_grpc.ModelServiceStub
    deployments: api_pb2_grpc.DeploymentServiceStub
    address: str  # host:port of the API server


@asynccontextmanager
async def serving(state: Path) -> AsyncIterator[Registry]:
    """The management API on a free port over the store in `state`; all closed after."""
    store = Store.open(state / "meshline.db")
    artifacts = ArtifactStore(state / "artifacts")
    server, token = guarded_server(store, state)
    add_api_to_server(server, store, StaticStatusProvider(), artifacts=artifacts)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = admin_aio_channel(f"127.0.0.1:{port}", token)
    try:
        yield Registry(
            store,
            artifacts,
            api_pb2_grpc.ApplyServiceStub(channel),
            api_pb2_grpc.ModelServiceStub(channel),
            api_pb2_grpc.DeploymentServiceStub(channel),
            f"127.0.0.1:{port}",
        )
    finally:
        await channel.close()
        await server.stop(None)
        store.close()


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    async with serving(tmp_path / "state") as r:
        yield r


@pytest.fixture
def model_pt(tmp_path: Path) -> Path:
    return torchscript_file(tmp_path / "model.pt")


def _signature() -> ModelSignature:
    return ModelSignature(
        inputs=[TensorSpec(name="x", datatype="FP32", shape=[-1, 4])],
        outputs=[TensorSpec(name="y", datatype="FP32", shape=[-1, 2])],
    )


def push_messages(
    data: bytes, model: str, version: str, sha256: str = "", size: int | None = None
) -> Iterable[api.PushModelVersionRequest]:
    header = api.PushModelVersionHeader(
        model=model,
        version=ModelVersion(name=version, runtime="torch", signature=_signature()),
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        size_bytes=len(data) if size is None else size,
    )
    yield api.PushModelVersionRequest(header=header)
    for start in range(0, len(data), CHUNK):
        yield api.PushModelVersionRequest(chunk=data[start : start + CHUNK])


async def push(r: Registry, data: bytes, model: str, version: str) -> api.PushModelVersionResponse:
    reply: api.PushModelVersionResponse = await r.models.PushModelVersion(
        iter(push_messages(data, model, version))
    )
    return reply


async def _rejected(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def _network(r: Registry) -> None:
    docs = [region("eu", "DE"), environment("production")]
    await r.apply.Apply(api.ApplyRequest(resources=docs))


async def test_a_pushed_version_is_listed_with_its_metadata_and_survives_a_restart(
    tmp_path: Path, model_pt: Path
) -> None:
    data = model_pt.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    async with serving(tmp_path / "state") as r:
        reply = await push(r, data, "mlp", "v1")
        assert reply.action == "created"
        assert (reply.version.sha256, reply.version.size_bytes) == (sha, len(data))
        assert reply.version.framework == "torchscript"
        assert reply.version.created_at.endswith("Z")
        listed = await r.models.ListModelVersions(api.ListModelVersionsRequest(model="mlp"))
        assert [v.name for v in listed.versions] == ["v1"]
        again = await push(r, data, "mlp", "v1")
        assert again.action == "unchanged"
        assert again.version.created_at == reply.version.created_at
    model_pt.unlink()  # the registry holds its own copy

    async with serving(tmp_path / "state") as r:  # a restart
        got = await r.models.GetModelVersion(api.GetModelVersionRequest(model="mlp", version="v1"))
        assert got.version == reply.version
        assert list(got.used_by) == []
        assert Path(got.version.artifact_path) == r.artifacts.path_of(sha)
        assert r.artifacts.verify(sha).size_bytes == len(data)
        chunks = r.models.DownloadArtifact(api.DownloadArtifactRequest(sha256=sha))
        assert b"".join([m.chunk async for m in chunks]) == data


async def test_bytes_changed_in_flight_are_rejected_by_the_checksum(
    registry: Registry, model_pt: Path
) -> None:
    data = model_pt.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    corrupted = bytearray(data)
    corrupted[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    error = await _rejected(
        registry.models.PushModelVersion(iter(push_messages(bytes(corrupted), "mlp", "v1", sha)))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error.details() or ""
    assert f"expected sha256 {sha}" in details
    assert f"got {hashlib.sha256(bytes(corrupted)).hexdigest()}" in details
    assert "nothing was stored" in details
    assert (await registry.models.ListModels(api.ListModelsRequest())).models == []
    assert registry.artifacts.digests() == set()
    assert list(registry.artifacts.tmp_dir.iterdir()) == [], "no temp file left behind"


@pytest.mark.parametrize("size_delta", [-1, 1])
async def test_a_push_of_the_wrong_size_stores_nothing(
    registry: Registry, model_pt: Path, size_delta: int
) -> None:
    data = model_pt.read_bytes()
    messages = push_messages(data, "mlp", "v1", size=len(data) + size_delta)
    error = await _rejected(registry.models.PushModelVersion(iter(messages)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nothing was stored" in (error.details() or "")
    assert registry.artifacts.digests() == set()
    assert list(registry.artifacts.tmp_dir.iterdir()) == []


async def test_malformed_pushes_are_refused(registry: Registry, model_pt: Path) -> None:
    chunk_first = [api.PushModelVersionRequest(chunk=b"x")]
    error = await _rejected(registry.models.PushModelVersion(iter(chunk_first)))
    assert "first message of a push must be its header" in (error.details() or "")
    bad_sha = push_messages(b"x", "mlp", "v1", sha256="abc")
    error = await _rejected(registry.models.PushModelVersion(iter(bad_sha)))
    assert "header.sha256: 'abc' is not a sha256 digest" in (error.details() or "")
    bad_name = push_messages(model_pt.read_bytes(), "MLP", "v1")
    error = await _rejected(registry.models.PushModelVersion(iter(bad_name)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "metadata.name" in (error.details() or "")
    assert registry.artifacts.digests() == set(), "a version not registered leaves no artifact"


async def test_other_content_under_an_existing_version_is_refused(
    registry: Registry, model_pt: Path, tmp_path: Path
) -> None:
    first = await push(registry, model_pt.read_bytes(), "mlp", "v1")
    other = torchscript_file(tmp_path / "other.pt", seed=1).read_bytes()
    error = await _rejected(push(registry, other, "mlp", "v1"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert f"exists with sha256 {first.version.sha256}" in (error.details() or "")
    assert registry.artifacts.digests() == {first.version.sha256}
    second = await push(registry, other, "mlp", "v2")
    listed = await registry.models.ListModelVersions(api.ListModelVersionsRequest(model="mlp"))
    assert [(v.name, v.sha256) for v in listed.versions] == [
        ("v1", first.version.sha256),
        ("v2", second.version.sha256),
    ]


async def test_a_version_in_use_cannot_be_deleted_until_its_deployment_goes(
    registry: Registry, model_pt: Path, tmp_path: Path
) -> None:
    await _network(registry)
    v1 = (await push(registry, model_pt.read_bytes(), "mlp", "v1")).version
    other = torchscript_file(tmp_path / "other.pt", seed=1).read_bytes()
    v2 = (await push(registry, other, "mlp", "v2")).version
    await registry.apply.Apply(api.ApplyRequest(resources=[deployment("web", "mlp", "v1")]))

    request = api.DeleteModelVersionRequest(model="mlp", version="v1")
    error = await _rejected(registry.models.DeleteModelVersion(request))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (error.details() or "").startswith(
        "model 'mlp' version 'v1' is used by deployment 'web' in environment 'production'"
    )
    got = await registry.models.GetModelVersion(
        api.GetModelVersionRequest(model="mlp", version="v1")
    )
    assert list(got.used_by) == ["deployment 'web' in environment 'production'"]
    assert registry.artifacts.exists(v1.sha256)

    await registry.deployments.DeleteDeployment(api.DeleteDeploymentRequest(name="web"))
    deleted = await registry.models.DeleteModelVersion(request)
    assert (deleted.artifact_removed, deleted.model_deleted) == (True, False)
    assert not registry.artifacts.exists(v1.sha256)
    assert registry.artifacts.digests() == {v2.sha256}
    missing = await _rejected(registry.models.DeleteModelVersion(request))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert "model 'mlp' has no version 'v1' (versions: v2)" in (missing.details() or "")

    last = await registry.models.DeleteModelVersion(
        api.DeleteModelVersionRequest(model="mlp", version="v2")
    )
    assert (last.artifact_removed, last.model_deleted) == (True, True)
    assert (await registry.models.ListModels(api.ListModelsRequest())).models == []
    assert registry.artifacts.digests() == set()


async def test_a_version_only_a_split_uses_cannot_be_deleted(
    registry: Registry, model_pt: Path, tmp_path: Path
) -> None:
    await _network(registry)
    await push(registry, model_pt.read_bytes(), "mlp", "v1")
    await push(registry, torchscript_file(tmp_path / "o.pt", seed=1).read_bytes(), "mlp", "v2")
    canary = deployment("web", "mlp", "v1")
    split = canary.deployment.spec.policies.add().traffic.split
    split.add(version="v1", weight=90)
    split.add(version="v2", weight=10)
    await registry.apply.Apply(api.ApplyRequest(resources=[canary]))
    error = await _rejected(
        registry.models.DeleteModelVersion(api.DeleteModelVersionRequest(model="mlp", version="v2"))
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "deployment 'web'" in (error.details() or "")


async def test_deleting_a_model_removes_its_artifacts(registry: Registry, model_pt: Path) -> None:
    reply = await push(registry, model_pt.read_bytes(), "mlp", "v1")
    await registry.models.DeleteModel(api.DeleteModelRequest(name="mlp"))
    assert not registry.artifacts.exists(reply.version.sha256)


async def test_download_of_an_unknown_artifact_is_not_found(registry: Registry) -> None:
    stream = registry.models.DownloadArtifact(api.DownloadArtifactRequest(sha256="0" * 64))
    error = await _rejected(stream.read())
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_a_pushed_version_can_be_applied_back_from_its_document(
    registry: Registry, model_pt: Path
) -> None:
    """What `get model -o yaml` prints for a pushed version (no path, a sha256) applies as is."""
    await push(registry, model_pt.read_bytes(), "mlp", "v1")
    stored = (await registry.models.GetModel(api.GetModelRequest(name="mlp"))).model
    again = await registry.apply.Apply(api.ApplyRequest(resources=[Resource(model=stored)]))
    assert [r.action for r in again.results] == ["unchanged"]


async def test_the_version_a_rollout_in_progress_moves_away_from_cannot_be_deleted(
    registry: Registry, model_pt: Path, tmp_path: Path
) -> None:
    """Mid-canary the stable track still runs the old version, though spec.version is new."""
    await _network(registry)
    await push(registry, model_pt.read_bytes(), "mlp", "v1")
    await push(registry, torchscript_file(tmp_path / "o.pt", seed=1).read_bytes(), "mlp", "v2")
    await registry.apply.Apply(api.ApplyRequest(resources=[deployment("web", "mlp", "v2")]))
    rollout = Rollout(
        environment="production", deployment="web", from_version="v1", to_version="v2"
    )
    rollout.phase = "Progressing"
    saved = save_rollout(registry.store, rollout)
    request = api.DeleteModelVersionRequest(model="mlp", version="v1")
    error = await _rejected(registry.models.DeleteModelVersion(request))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "deployment 'web' in environment 'production'" in (error.details() or "")

    saved.phase = "Succeeded"
    save_rollout(registry.store, saved)
    deleted = await registry.models.DeleteModelVersion(request)
    assert deleted.artifact_removed
