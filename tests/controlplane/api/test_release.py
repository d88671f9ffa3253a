"""Release a deployment between environments through a real grpc.aio server and SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from controlplane.api import field_errors_from_trailers
from meshline.v1 import api_pb2 as api
from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import Deployment
from tests.controlplane.api.test_registry import Registry, serving
from tests.controlplane.registry.files import torchscript_file
from tests.controlplane.store.builders import deployment, environment, location, model, region


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    """Regions eu (DE) and us (US); development allows anything, production only eu."""
    artifact = torchscript_file(tmp_path / "m.pt")
    async with serving(tmp_path / "state") as r:
        docs = [
            region("eu", "DE"),
            region("us", "US"),
            environment("development"),
            environment("production", [location(regions=["eu"], mode="mandatory")]),
            model("mlp", [("v1", artifact), ("v2", artifact)]),
        ]
        await r.apply.Apply(api.ApplyRequest(resources=docs))
        yield r


async def _apply_dev(r: Registry, doc: Deployment) -> None:
    await r.apply.Apply(api.ApplyRequest(resources=[Resource(deployment=doc)]))


def _dev(policies_regions: list[str], replicas: int = 2) -> Deployment:
    doc = deployment(
        "web",
        "mlp",
        "v2",
        "development",
        replicas=replicas,
        policies=[location(regions=policies_regions)],
    ).deployment
    doc.metadata.labels["team"] = "vision"
    doc.spec.batching.max_batch_size = 8
    doc.spec.instances = 2
    return doc


async def _get(r: Registry, env: str) -> Deployment:
    reply = await r.deployments.GetDeployment(api.GetDeploymentRequest(name="web", environment=env))
    return reply.deployment


async def _release(r: Registry, dry_run: bool = False) -> api.ReleaseDeploymentResponse:
    reply: api.ReleaseDeploymentResponse = await r.deployments.ReleaseDeployment(
        api.ReleaseDeploymentRequest(
            name="web",
            source_environment="development",
            target_environment="production",
            dry_run=dry_run,
        )
    )
    return reply


async def _rejected(r: Registry, **fields: str) -> grpc.aio.AioRpcError:
    request = api.ReleaseDeploymentRequest(name="web", **fields)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await r.deployments.ReleaseDeployment(request)
    return caught.value


async def test_release_copies_the_whole_spec_into_the_target(registry: Registry) -> None:
    await _apply_dev(registry, _dev(["eu"]))
    dry = await _release(registry, dry_run=True)
    assert dry.result.action == "created"
    assert list(dry.result.placement) == ["eu"]
    assert registry.store.list_deployments("production") == []

    reply = await _release(registry)
    assert (reply.result.kind, reply.result.name, reply.result.action) == (
        "Deployment",
        "web",
        "created",
    )
    source, target = await _get(registry, "development"), await _get(registry, "production")
    assert target.spec.environment == "production"
    expected = type(source.spec)()
    expected.CopyFrom(source.spec)
    expected.environment = "production"
    assert target.spec == expected  # version, own policies, replicas, batching, instances
    assert dict(target.metadata.labels) == {"team": "vision"}
    assert (await _release(registry)).result.action == "unchanged"

    # A release onto an existing deployment updates it.
    await _apply_dev(registry, _dev(["eu"], replicas=3))
    assert (await _release(registry)).result.action == "configured"
    assert (await _get(registry, "production")).spec.replicas == 3


async def test_scaling_travels_and_activation_stays_the_targets(registry: Registry) -> None:
    dev = _dev(["eu"], replicas=0)
    dev.spec.scaling.max_replicas = 4
    dev.spec.scaling.scale_to_zero_after = 30
    dev.spec.deactivated = True
    await _apply_dev(registry, dev)
    await _release(registry)
    prod = await _get(registry, "production")
    assert prod.spec.scaling == dev.spec.scaling
    assert not prod.spec.deactivated, "a new deployment in the target is active"

    prod.spec.deactivated = True  # switched off in production on purpose
    prod.spec.scaling.max_replicas = 2
    await registry.apply.Apply(api.ApplyRequest(resources=[Resource(deployment=prod)]))
    await _release(registry)
    again = await _get(registry, "production")
    assert again.spec.deactivated and again.spec.scaling.max_replicas == 4


async def test_a_release_the_target_policies_forbid_changes_nothing(registry: Registry) -> None:
    await _apply_dev(registry, _dev(["eu"]))
    await _release(registry)
    before = await _get(registry, "production")

    await _apply_dev(registry, _dev(["us"]))  # fine in development, not in production
    revision = registry.store.revision
    error = await _rejected(
        registry, source_environment="development", target_environment="production"
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error.details() or ""
    assert details.startswith(
        "cannot release deployment 'web' from 'development' to 'production', nothing changed:"
    )
    assert "environment 'production' mandatory" in details
    [field] = field_errors_from_trailers(error.trailing_metadata())
    assert (field.kind, field.name, field.field_path) == ("Deployment", "web", "spec.policies")
    assert await _get(registry, "production") == before
    assert registry.store.revision == revision


async def test_a_first_release_that_violates_the_target_stores_nothing(registry: Registry) -> None:
    await _apply_dev(registry, _dev(["us"]))
    error = await _rejected(
        registry, source_environment="development", target_environment="production"
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert registry.store.list_deployments("production") == []


async def test_release_errors_name_what_is_missing(registry: Registry) -> None:
    error = await _rejected(
        registry, source_environment="development", target_environment="production"
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "deployment 'web' in environment 'development' not found"

    await _apply_dev(registry, _dev(["eu"]))
    error = await _rejected(registry, source_environment="development", target_environment="qa")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "environment 'qa' does not exist" in (error.details() or "")
    error = await _rejected(
        registry, source_environment="development", target_environment="development"
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "already in environment 'development'" in (error.details() or "")
    error = await _rejected(registry, source_environment="development")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
