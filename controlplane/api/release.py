"""Release: copy a deployment into another environment through the apply path.

The whole spec is copied with only the environment changed, so every setting a deployment has
(version, its own policies, replicas, batching, scaling, ...) travels, including fields added
later; only `deactivated` stays the target's. Going through `apply_resources` means the target
environment's mandatory policies are enforced exactly as `meshline apply` would, and an error
stores nothing.
"""

from __future__ import annotations

from controlplane.api.apply import apply_resources
from controlplane.store import InvalidApplyError, NotFoundError, Store
from controlplane.store.artifacts import ArtifactStore
from meshline.v1.api_pb2 import ApplyResult, Resource
from meshline.v1.resources_pb2 import Deployment


def released(
    source: Deployment, target_environment: str, existing: Deployment | None
) -> Deployment:
    """The document that `source` becomes in `target_environment`.

    Everything is copied but `deactivated`: whether a deployment serves is a switch of each
    environment (`meshline deactivate|activate`), so a release keeps the target's (a new one
    is active), and a deployment deactivated in development can still be released.
    """
    copy = Deployment()
    copy.metadata.name = source.metadata.name
    copy.metadata.labels.update(source.metadata.labels)
    copy.spec.CopyFrom(source.spec)
    copy.spec.environment = target_environment
    copy.spec.deactivated = existing is not None and existing.spec.deactivated
    return copy


def release_deployment(
    store: Store,
    name: str,
    source_environment: str,
    target_environment: str,
    dry_run: bool = False,
    artifacts: ArtifactStore | None = None,
) -> ApplyResult:
    """Create or update deployment `name` of `target_environment` from the one in
    `source_environment`; NotFoundError when the source does not exist, ApplyError (naming
    the policy) when the target environment does not allow it."""
    if not source_environment or not target_environment:
        raise InvalidApplyError("release needs a source and a target environment")
    if source_environment == target_environment:
        raise InvalidApplyError(
            f"deployment '{name}' is already in environment '{source_environment}': "
            "release it to another environment"
        )
    source = store.get_deployment(source_environment, name)
    try:
        existing: Deployment | None = store.get_deployment(target_environment, name)
    except NotFoundError:
        existing = None
    doc = Resource(deployment=released(source, target_environment, existing))
    [result] = apply_resources(store, [doc], dry_run=dry_run, artifacts=artifacts)
    return result
