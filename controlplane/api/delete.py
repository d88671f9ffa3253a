"""Delete: check every target against what stays, then delete all of them or none."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from controlplane.api.dependencies import region_dependents
from controlplane.api.registry import remove_unreferenced
from controlplane.store import (
    DEFAULT_ENVIRONMENT,
    KIND_DEPLOYMENT,
    KIND_ENVIRONMENT,
    KIND_MODEL,
    KIND_REGION,
    ResourceKey,
    Store,
    StoreSnapshot,
)
from controlplane.store.artifacts import ArtifactStore
from controlplane.store.store import DELETE_ORDER
from meshline.keys import DeploymentKey

ACTION_DELETED = "deleted"
ACTION_NOT_FOUND = "not found"


class DeleteRefusedError(Exception):
    """Some target cannot go (or does not exist): nothing was deleted; every reason listed."""

    def __init__(self, problems: Sequence[str], only_missing: bool) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"nothing was deleted:\n{lines}")
        self.problems = tuple(problems)
        self.only_missing = only_missing  # every problem is a target that does not exist


@dataclass(frozen=True)
class DeletePlan:
    """Targets that exist, in the order they are deleted, and those that do not."""

    present: tuple[ResourceKey, ...]
    missing: tuple[ResourceKey, ...]


def plan_delete(
    targets: Sequence[ResourceKey], stored: StoreSnapshot, ignore_not_found: bool = False
) -> DeletePlan:
    """Check `targets` against `stored`; raises DeleteRefusedError naming every problem.

    A target may be used by another target (a deployment and its model, in one file): only
    what stays afterwards counts as a user.
    """
    keys = list(dict.fromkeys(_normalized(k) for k in targets))
    existing = _existing_keys(stored)
    present = tuple(sorted((k for k in keys if k in existing), key=lambda k: DELETE_ORDER[k.kind]))
    missing = tuple(k for k in keys if k not in existing)
    problems = [] if ignore_not_found else [f"{k} not found" for k in missing]
    only_missing = bool(problems)
    going = set(present)
    # Regions stay in the picture: placement is resolved against them to tell who runs there.
    staying = _without(stored, {k for k in going if k.kind != KIND_REGION})
    for key in present:
        users = _users(key, staying)
        if users:
            only_missing = False
            problems.append(f"{key} is used by {', '.join(users)}; delete or change those first")
    if problems:
        raise DeleteRefusedError(problems, only_missing)
    return DeletePlan(present, missing)


def delete_resources(
    store: Store,
    targets: Sequence[ResourceKey],
    *,
    dry_run: bool = False,
    ignore_not_found: bool = False,
    artifacts: ArtifactStore | None = None,
) -> list[tuple[ResourceKey, str]]:
    """Delete `targets` all or nothing; returns (target, action) in the order of deletion.

    Synchronous from the snapshot to the commit (nothing else changes the store in between in
    the single-threaded asyncio server); the store's own transaction checks again.
    """
    plan = plan_delete(targets, store.snapshot(), ignore_not_found)
    if not dry_run and plan.present:
        store.delete(plan.present)
        if any(k.kind == KIND_MODEL for k in plan.present):
            remove_unreferenced(store, artifacts or ArtifactStore.beside(store.path))
    return [(k, ACTION_DELETED) for k in plan.present] + [
        (k, ACTION_NOT_FOUND) for k in plan.missing
    ]


def _normalized(key: ResourceKey) -> ResourceKey:
    if key.kind == KIND_DEPLOYMENT:
        return replace(key, environment=key.environment or DEFAULT_ENVIRONMENT)
    return replace(key, environment="")


def _existing_keys(stored: StoreSnapshot) -> set[ResourceKey]:
    keys = {ResourceKey(KIND_MODEL, m.metadata.name) for m in stored.models}
    keys |= {ResourceKey(KIND_ENVIRONMENT, e.metadata.name) for e in stored.environments}
    keys |= {ResourceKey(KIND_REGION, r.metadata.name) for r in stored.regions}
    keys |= {
        ResourceKey(KIND_DEPLOYMENT, d.metadata.name, d.spec.environment)
        for d in stored.deployments
    }
    return keys


def _without(stored: StoreSnapshot, going: set[ResourceKey]) -> StoreSnapshot:
    """What the store holds once `going` (models, environments, deployments) is deleted."""
    return replace(
        stored,
        models=tuple(
            m for m in stored.models if ResourceKey(KIND_MODEL, m.metadata.name) not in going
        ),
        environments=tuple(
            e
            for e in stored.environments
            if ResourceKey(KIND_ENVIRONMENT, e.metadata.name) not in going
        ),
        deployments=tuple(
            d
            for d in stored.deployments
            if ResourceKey(KIND_DEPLOYMENT, d.metadata.name, d.spec.environment) not in going
        ),
    )


def _users(key: ResourceKey, staying: StoreSnapshot) -> list[str]:
    """What still uses `key` among the resources that stay."""
    if key.kind == KIND_REGION:
        return region_dependents(key.name, staying)
    if key.kind == KIND_MODEL:
        deps = [d for d in staying.deployments if d.spec.model == key.name]
    elif key.kind == KIND_ENVIRONMENT:
        deps = [d for d in staying.deployments if d.spec.environment == key.name]
    else:
        return []
    return [
        f"deployment '{d.metadata.name}' in environment '{d.spec.environment}'"
        for d in sorted(deps, key=lambda d: DeploymentKey(d.spec.environment, d.metadata.name))
    ]
