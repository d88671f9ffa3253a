"""Apply: validate everything, resolve every placement, then store all or nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from controlplane.api.effects import deployment_effects
from controlplane.api.errors import ApplyError, FieldError
from controlplane.api.index import ResourceIndex
from controlplane.api.plan_capacity import request_capacity
from controlplane.api.validate import validate_resources
from controlplane.api.versions import register_versions
from controlplane.explain import planned
from controlplane.explain_capacity import RegionRoom
from controlplane.policy import (
    PlacementError,
    ResolvedDeployment,
    ResolveMemo,
    resolve_network,
    resolve_placement,
)
from controlplane.store import (
    KIND_DEPLOYMENT,
    KIND_ENVIRONMENT,
    KIND_REGION,
    ResourceKey,
    Store,
    StoreSnapshot,
    normalized,
)
from controlplane.store import ApplyResult as StoredResult
from controlplane.store.artifacts import ArtifactStore
from controlplane.store.footprints import load_footprints
from meshline.keys import DeploymentKey
from meshline.v1.api_pb2 import ApplyResponse, ApplyResult, Resource
from meshline.v1.api_pb2 import DeploymentEffect as ApiDeploymentEffect
from meshline.v1.resources_pb2 import Deployment, Region, RegionCapacityPlan


@dataclass(frozen=True)
class ApplyPlan:
    """A request that passed every check, and how each deployment will run afterwards."""

    documents: tuple[Resource, ...]  # normalized
    index: ResourceIndex
    resolved: dict[DeploymentKey, ResolvedDeployment]
    regions: tuple[Region, ...]


def plan_apply(
    resources: Sequence[Resource], stored: StoreSnapshot, memo: ResolveMemo | None = None
) -> ApplyPlan:
    """Check `resources` against `stored`; raises ApplyError listing every problem.

    Policies are resolved for every deployment that exists afterwards, not only those in the
    request: changing an environment or a region must not leave a stored deployment nowhere,
    and region capacity is shared out over all of them (`memo`: the resolutions of earlier
    passes, so only what the request changes is resolved again).
    """
    docs = tuple(normalized(r) if r.WhichOneof("kind") else r for r in resources)
    index = ResourceIndex.build(stored, docs)
    errors = validate_resources(docs, index)
    failed = {e.document_index for e in errors}
    regions = tuple(index.regions[name] for name in sorted(index.regions))
    created = {
        DeploymentKey(d.spec.environment, d.metadata.name): d.metadata.created_at
        for d in stored.deployments
    }
    candidates = []
    for (env_name, name), dep in sorted(index.deployments.items()):
        position = index.document_of(ResourceKey(KIND_DEPLOYMENT, name, env_name))
        env_position = index.document_of(ResourceKey(KIND_ENVIRONMENT, env_name))
        if env_name not in index.environments or (position is not None and position in failed):
            continue  # already reported
        if env_position is not None and env_position in failed:
            continue  # its environment's own errors come first
        if not dep.metadata.created_at and (env_name, name) in created:
            # An update keeps its place in line for region capacity.
            dep = _with_created_at(dep, created[DeploymentKey(env_name, name)])
        candidates.append(dep)
    network = resolve_network(candidates, index.environments, regions, memo)
    for (env_name, name), message in sorted(network.errors.items()):
        position = index.document_of(ResourceKey(KIND_DEPLOYMENT, name, env_name))
        if position is None:
            errors.append(_stranding_error(docs, index, stored, (env_name, name), message))
            continue
        context = f"in environment '{env_name}'"
        errors.append(
            FieldError(position, KIND_DEPLOYMENT, name, "spec.policies", message, context)
        )
    if errors:
        raise ApplyError(errors)
    return ApplyPlan(docs, index, network.deployments, regions)


def _stranding_error(
    docs: Sequence[Resource],
    index: ResourceIndex,
    stored: StoreSnapshot,
    key: tuple[str, str],
    message: str,
) -> FieldError:
    """A stored deployment the request would leave nowhere, blamed on the document that does it.

    The deployment's environment if the request changes it, else a region the request changes
    (capacity, country, flavors) that the deployment runs in now, so the CLI names the file and
    document to fix.
    """
    env_name, name = key
    env_position = index.document_of(ResourceKey(KIND_ENVIRONMENT, env_name))
    if env_position is not None:
        what = f"this apply would leave deployment '{name}' running nowhere: {message}"
        return FieldError(env_position, KIND_ENVIRONMENT, env_name, "spec.policies", what)
    changed_regions = [
        (position, doc.region.metadata.name)
        for position, doc in enumerate(docs)
        if doc.WhichOneof("kind") == "region"
    ]
    if changed_regions:
        now = _placed_now(stored, env_name, name)
        position, region = next(
            ((p, r) for p, r in changed_regions if r in now), changed_regions[0]
        )
        what = (
            f"this apply would leave deployment '{name}' in environment '{env_name}' "
            f"running nowhere: {message}"
        )
        return FieldError(position, KIND_REGION, region, "spec", what)
    what = f"this apply would leave it running nowhere: {message}"
    context = f"in environment '{env_name}'"
    return FieldError(None, KIND_DEPLOYMENT, name, "spec.policies", what, context)


def _placed_now(stored: StoreSnapshot, env_name: str, name: str) -> tuple[str, ...]:
    """Where the stored deployment runs before the request (capacity left aside)."""
    env = next((e for e in stored.environments if e.metadata.name == env_name), None)
    dep = next(
        (
            d
            for d in stored.deployments
            if DeploymentKey(d.spec.environment, d.metadata.name) == (env_name, name)
        ),
        None,
    )
    if env is None or dep is None:
        return ()
    try:
        return resolve_placement(dep, env, stored.regions).regions
    except PlacementError:
        return ()


def _with_created_at(dep: Deployment, created_at: str) -> Deployment:
    copy = Deployment()
    copy.CopyFrom(dep)
    copy.metadata.created_at = created_at
    return copy


def apply_resources(
    store: Store,
    resources: Sequence[Resource],
    dry_run: bool = False,
    artifacts: ArtifactStore | None = None,
) -> list[ApplyResult]:
    """`apply_request`'s results alone."""
    return list(apply_request(store, resources, dry_run, artifacts).results)


def apply_request(
    store: Store,
    resources: Sequence[Resource],
    dry_run: bool = False,
    artifacts: ArtifactStore | None = None,
    rooms: Callable[[], Mapping[str, RegionRoom]] | None = None,
    memo: ResolveMemo | None = None,
) -> ApplyResponse:
    """Validate, resolve, register model versions and store (or, with `dry_run`, only tell
    what would happen).

    Synchronous from the snapshot to the commit, so nothing else changes the store between
    the checks and the write in a single-threaded asyncio server. Artifacts no version
    references afterwards (dropped versions, copies of a rejected apply) are removed.
    `artifacts` defaults to the store of the database's state directory. `rooms`: each
    region's capacity now; a dry run's plans then say whether each deployment fits. `memo`:
    resolutions of earlier calls (the network is resolved before and after the change, and
    a change touches few deployments).
    """
    artifacts = artifacts or ArtifactStore.beside(store.path)
    snapshot = store.snapshot()
    plan = plan_apply(resources, snapshot, memo)
    effects = _effects(snapshot, plan, memo)
    try:
        documents = register_versions(plan.documents, snapshot, artifacts, dry_run)
        stored = store.apply(documents, dry_run=dry_run)
    finally:
        if not dry_run:
            artifacts.remove_unreferenced(store.artifact_references())
    capacity = (
        _capacity(store, plan, documents, stored, rooms()) if dry_run and rooms is not None else {}
    )
    results = []
    for result in stored:
        out = ApplyResult(kind=result.kind, name=result.name, action=result.action)
        key = DeploymentKey(result.environment, result.name)
        resolved = plan.resolved.get(key)
        if result.kind == KIND_DEPLOYMENT and resolved is not None:
            out.placement.extend(resolved.placement.regions)
            # What the gateways will be told, explained from policy (no live endpoints).
            out.plan.CopyFrom(planned(resolved, plan.regions))
            out.plan.capacity.extend(capacity.get(key, []))
        results.append(out)
    return ApplyResponse(results=results, effects=effects)


def _capacity(
    store: Store,
    plan: ApplyPlan,
    documents: Sequence[Resource],
    stored: Sequence[StoredResult],
    rooms: Mapping[str, RegionRoom],
) -> dict[DeploymentKey, list[RegionCapacityPlan]]:
    """Whether each requested deployment's workers fit where it is placed, now: its
    versions as registered by this request (their sizes), footprints as measured so far."""
    models = dict(plan.index.models)
    for doc in documents:
        if doc.WhichOneof("kind") == "model":
            models[doc.model.metadata.name] = doc.model
    requested = [DeploymentKey(r.environment, r.name) for r in stored if r.kind == KIND_DEPLOYMENT]
    # Each region's cap as it will be after this request (it may change a region).
    capped = {
        r.metadata.name: dataclasses.replace(
            rooms.get(r.metadata.name, RegionRoom()), max_replicas=r.spec.max_replicas
        )
        for r in plan.regions
    }
    return request_capacity(
        requested,
        plan.resolved,
        plan.index.deployments,
        list(models.values()),
        load_footprints(store),
        capped,
    )


def _effects(
    stored: StoreSnapshot, plan: ApplyPlan, memo: ResolveMemo | None = None
) -> list[ApiDeploymentEffect]:
    environments = {e.metadata.name: e for e in stored.environments}
    before = resolve_network(stored.deployments, environments, stored.regions, memo).deployments
    requested = {
        DeploymentKey(d.deployment.spec.environment, d.deployment.metadata.name)
        for d in plan.documents
        if d.WhichOneof("kind") == "deployment"
    }
    return [
        ApiDeploymentEffect(
            name=e.name,
            environment=e.environment,
            placement_before=e.placement_before,
            placement_after=e.placement_after,
            changed=e.changed,
            details=e.details,
        )
        for e in deployment_effects(before, plan.resolved, requested)
    ]
