"""What the audit log says an allowed change did: one event per action, its detail read from
the request, the answer and (for an apply) the deployment as it was before the call
(`before`, read through StoredFacts). Pure."""

from __future__ import annotations

from controlplane.api.authz import Action
from controlplane.api.request_actions import env_or_default, ref_action
from controlplane.api.rule_types import Before, DeploymentFacts, Event, Request, StoredFacts
from meshline.v1 import api_pb2 as api

# --- ApplyService ---------------------------------------------------------------------------


def apply_before(request: api.ApplyRequest, facts: StoredFacts) -> Before:
    before: dict[tuple[str, str], DeploymentFacts] = {}
    for resource in request.resources:
        if resource.WhichOneof("kind") == "deployment":
            dep = resource.deployment
            key = (env_or_default(dep.spec.environment), dep.metadata.name)
            if (found := facts.deployment(*key)) is not None:
                before[key] = found
    return before


def deployment_change(before: DeploymentFacts | None, version: str, replicas: int) -> str:
    """`version v1 -> v2, replicas 2 -> 3`: what an apply changed in the fields people ask
    about first (empty when neither changed)."""
    if before is None:
        return f"version {version}, replicas {replicas}"
    parts = []
    if before.version != version:
        parts.append(f"version {before.version} -> {version}")
    if before.replicas != replicas:
        parts.append(f"replicas {before.replicas} -> {replicas}")
    return ", ".join(parts)


def apply_events(
    request: api.ApplyRequest,
    response: api.ApplyResponse,
    actions: tuple[Action, ...],
    before: Before,
) -> tuple[Event, ...]:
    events = []
    for action, resource, result in zip(actions, request.resources, response.results, strict=False):
        detail = result.action
        if resource.WhichOneof("kind") == "deployment" and result.action != "unchanged":
            spec = resource.deployment.spec
            key = (action.environment, action.name)
            change = deployment_change(before.get(key), spec.version, spec.replicas)
            detail = f"{detail}: {change}" if change else detail
        events.append(Event(action, detail))
    return tuple(events)


def delete_events(
    request: api.DeleteRequest,
    response: api.DeleteResponse,
    actions: tuple[Action, ...],
    before: Before,
) -> tuple[Event, ...]:
    return tuple(Event(ref_action(r.target, "delete"), r.action) for r in response.results)


# --- ModelService ---------------------------------------------------------------------------


def push_events(
    request: Request,
    response: api.PushModelVersionResponse,
    actions: tuple[Action, ...],
    before: Before,
) -> tuple[Event, ...]:
    return (Event(actions[0], response.action),)


def delete_version_events(
    request: api.DeleteModelVersionRequest,
    response: api.DeleteModelVersionResponse,
    actions: tuple[Action, ...],
    before: Before,
) -> tuple[Event, ...]:
    detail = "deleted"
    if response.model_deleted:
        detail += "; it was the last version: model deleted"
    if response.artifact_removed:
        detail += "; artifact removed"
    return (Event(actions[0], detail),)


# --- DeploymentService ----------------------------------------------------------------------


def active_events(
    request: api.SetDeploymentActiveRequest,
    response: api.SetDeploymentActiveResponse,
    actions: tuple[Action, ...],
    before: Before,
) -> tuple[Event, ...]:
    state = "active" if request.active else "deactivated"
    detail = f"{state}" if response.changed else f"unchanged: already {state}"
    return (Event(actions[0], detail),)


def release_events(
    request: api.ReleaseDeploymentRequest,
    response: api.ReleaseDeploymentResponse,
    actions: tuple[Action, ...],
    before: Before,
) -> tuple[Event, ...]:
    source = env_or_default(request.source_environment)
    return (Event(actions[-1], f"from '{source}': {response.result.action}"),)


# --- RegionService --------------------------------------------------------------------------


def join_token_events(
    request: api.CreateJoinTokenRequest,
    response: api.CreateJoinTokenResponse,
    actions: tuple[Action, ...],
    before: Before,
) -> tuple[Event, ...]:
    detail = f"created: token {response.token.metadata.name} for region {request.spec.region}"
    return (Event(actions[0], detail),)


# --- KeyService -----------------------------------------------------------------------------


def rotate_events(
    request: api.RotateKeyRequest,
    response: api.RotateKeyResponse,
    actions: tuple[Action, ...],
    before: Before,
) -> tuple[Event, ...]:
    status = response.key.status
    return (Event(actions[0], f"rotated: key id {status.key_id}, grace {request.grace_s:g}s"),)


def create_key_events(
    request: api.CreateKeyRequest,
    response: api.CreateKeyResponse,
    actions: tuple[Action, ...],
    before: Before,
) -> tuple[Event, ...]:
    spec = response.key.spec
    roles = ", ".join(spec.roles) or "none"
    return (Event(actions[0], f"created: key id {response.key.status.key_id}, roles {roles}"),)
