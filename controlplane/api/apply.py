"""Apply: validate everything, resolve every placement, then store all or nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controlplane.api.errors import ApplyError, FieldError
from controlplane.api.index import ResourceIndex
from controlplane.api.validate import validate_resources
from controlplane.policy import Placement, PlacementError, resolve_placement
from controlplane.store import (
    KIND_DEPLOYMENT,
    KIND_ENVIRONMENT,
    ResourceKey,
    Store,
    StoreSnapshot,
    normalized,
)
from meshline.v1.api_pb2 import ApplyResult, Resource


@dataclass(frozen=True)
class ApplyPlan:
    """A request that passed every check, and where each deployment will run afterwards."""

    documents: tuple[Resource, ...]  # normalized
    index: ResourceIndex
    placements: dict[tuple[str, str], Placement]  # (environment, name) -> placement


def plan_apply(resources: Sequence[Resource], stored: StoreSnapshot) -> ApplyPlan:
    """Check `resources` against `stored`; raises ApplyError listing every problem.

    Placement is resolved for every deployment that exists afterwards, not only those in the
    request: changing an environment or a region must not leave a stored deployment nowhere.
    """
    docs = tuple(normalized(r) if r.WhichOneof("kind") else r for r in resources)
    index = ResourceIndex.build(stored, docs)
    errors = validate_resources(docs, index)
    failed = {e.document_index for e in errors}
    regions = [index.regions[name] for name in sorted(index.regions)]
    placements: dict[tuple[str, str], Placement] = {}
    for (env_name, name), dep in sorted(index.deployments.items()):
        position = index.document_of(ResourceKey(KIND_DEPLOYMENT, name, env_name))
        env_position = index.document_of(ResourceKey(KIND_ENVIRONMENT, env_name))
        env = index.environments.get(env_name)
        if env is None or (position is not None and position in failed):
            continue  # already reported
        if env_position is not None and env_position in failed:
            continue  # its environment's own errors come first
        try:
            placements[(env_name, name)] = resolve_placement(dep, env, regions)
        except PlacementError as exc:
            message = str(exc)
            if position is None:
                message = f"this apply would leave it running nowhere: {message}"
            context = f"in environment '{env_name}'"
            errors.append(
                FieldError(position, KIND_DEPLOYMENT, name, "spec.policies", message, context)
            )
    if errors:
        raise ApplyError(errors)
    return ApplyPlan(docs, index, placements)


def apply_resources(
    store: Store, resources: Sequence[Resource], dry_run: bool = False
) -> list[ApplyResult]:
    """Validate, resolve and store (or, with `dry_run`, only tell what would happen).

    Synchronous from the snapshot to the commit, so nothing else changes the store between
    the checks and the write in a single-threaded asyncio server.
    """
    plan = plan_apply(resources, store.snapshot())
    stored = store.apply(plan.documents, dry_run=dry_run)
    results = []
    for result in stored:
        out = ApplyResult(kind=result.kind, name=result.name, action=result.action)
        placement = plan.placements.get((result.environment, result.name))
        if result.kind == KIND_DEPLOYMENT and placement is not None:
            out.placement.extend(placement.regions)
        results.append(out)
    return results
