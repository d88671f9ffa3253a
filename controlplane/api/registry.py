"""Model registry operations behind the ModelService RPCs: push, delete and who uses a version.

Each goes through `apply_resources` with the model document changed, so a pushed or removed
version meets exactly the checks (and the one transaction) of `meshline apply`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from controlplane.api.apply import apply_resources
from controlplane.store import (
    KIND_MODEL,
    DependencyError,
    InvalidApplyError,
    NotFoundError,
    ResourceKey,
    Store,
    StoreError,
    StoreSnapshot,
)
from controlplane.store.artifacts import ArtifactStore
from controlplane.store.rollouts import latest_rollouts
from meshline.keys import DeploymentKey
from meshline.phases import ROLLING
from meshline.v1.api_pb2 import PushModelVersionHeader, Resource
from meshline.v1.resources_pb2 import Model, ModelVersion, Rollout


class VersionNotFoundError(NotFoundError):
    """The model exists, the version does not."""

    def __init__(self, model: str, version: str, known: list[str]) -> None:
        StoreError.__init__(
            self,
            f"model '{model}' has no version '{version}' (versions: {', '.join(known) or 'none'})",
        )
        self.key = ResourceKey(KIND_MODEL, model)


class VersionExistsError(StoreError):
    """A push under a version name that holds other content (versions are immutable)."""


@dataclass(frozen=True)
class DeleteOutcome:
    model_deleted: bool
    artifact_removed: bool


def find_version(store: Store, model: str, version: str) -> ModelVersion:
    stored = store.get_model(model)
    for candidate in stored.spec.versions:
        if candidate.name == version:
            return candidate
    raise VersionNotFoundError(model, version, [v.name for v in stored.spec.versions])


# Rollout phases in which the version rolled away from still serves (the stable track).


def version_users(
    snapshot: StoreSnapshot,
    model: str,
    version: str,
    rollouts: Mapping[DeploymentKey, Rollout] | None = None,
) -> list[str]:
    """The deployments that run `version`: as their own version, a split leg, a mirror, or
    the stable side of a rollout in progress (`rollouts`: the latest per deployment)."""
    users = []
    for dep in snapshot.deployments:
        spec = dep.spec
        if spec.model != model:
            continue
        named = {spec.version}
        for policy in spec.policies:
            if policy.WhichOneof("rule") == "traffic":
                named.update(leg.version for leg in policy.traffic.split)
                named.add(policy.traffic.mirror.version)
        rollout = (rollouts or {}).get(DeploymentKey(spec.environment, dep.metadata.name))
        if rollout is not None and rollout.phase in ROLLING:
            named.add(rollout.from_version)
        if version in named:
            users.append(f"deployment '{dep.metadata.name}' in environment '{spec.environment}'")
    return users


def push_version(
    store: Store, artifacts: ArtifactStore, header: PushModelVersionHeader
) -> tuple[ModelVersion, str]:
    """Register the (already stored, checked) artifact of `header` as a version.

    The model is created when it does not exist. Pushing the same content again under the
    same name is "unchanged"; other content under an existing name is refused. When the
    version is not registered, its artifact is removed again (unless something else uses it).
    """
    try:
        return _push(store, artifacts, header)
    except BaseException:
        remove_unreferenced(store, artifacts)
        raise


def _push(
    store: Store, artifacts: ArtifactStore, header: PushModelVersionHeader
) -> tuple[ModelVersion, str]:
    version = ModelVersion()
    version.CopyFrom(header.version)
    if version.path or version.HasField("huggingface") or version.HasField("external"):
        raise InvalidApplyError(
            "a pushed version carries its bytes: leave path, huggingface and external empty"
        )
    version.sha256 = header.sha256
    try:
        stored = store.get_model(header.model)
    except NotFoundError:
        stored = Model()
        stored.metadata.name = header.model
    existing = next((v for v in stored.spec.versions if v.name == version.name), None)
    if existing is not None:
        if existing.sha256 != version.sha256:
            raise VersionExistsError(
                f"model '{header.model}' version '{version.name}' exists with sha256 "
                f"{existing.sha256 or '(unrecorded)'}, not {version.sha256}; versions are "
                "immutable: push under a new version name, or delete this one first"
            )
        version = existing  # the same bytes: runtime and signature as registered
    doc = Model()
    doc.metadata.name = stored.metadata.name
    doc.metadata.labels.update(stored.metadata.labels)
    doc.spec.CopyFrom(stored.spec)
    if existing is None:
        doc.spec.versions.append(version)
    apply_resources(store, [Resource(model=doc)], artifacts=artifacts)
    action = "unchanged" if existing is not None else "created"
    return find_version(store, header.model, version.name), action


def delete_version(
    store: Store, artifacts: ArtifactStore, model: str, version: str
) -> DeleteOutcome:
    """Delete `version` of `model` unless a deployment uses it; the model goes with its last
    version, and the artifact when no other version references it."""
    target = find_version(store, model, version)
    users = version_users(store.snapshot(), model, version, latest_rollouts(store))
    if users:
        raise DependencyError(ResourceKey(KIND_MODEL, model), users, what=f"version '{version}'")
    stored = store.get_model(model)
    remaining = [v for v in stored.spec.versions if v.name != version]
    if remaining:
        doc = Model()
        doc.metadata.name = model
        doc.metadata.labels.update(stored.metadata.labels)
        doc.spec.CopyFrom(stored.spec)
        del doc.spec.versions[:]
        doc.spec.versions.extend(remaining)
        apply_resources(store, [Resource(model=doc)], artifacts=artifacts)
    else:
        store.delete_model(model)
        remove_unreferenced(store, artifacts)
    removed = bool(target.sha256) and not artifacts.exists(target.sha256)
    return DeleteOutcome(model_deleted=not remaining, artifact_removed=removed)


def remove_unreferenced(store: Store, artifacts: ArtifactStore) -> list[str]:
    """Remove the artifacts no version references any more (after a delete)."""
    return artifacts.remove_unreferenced(store.artifact_references())
