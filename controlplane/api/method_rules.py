"""One authorization rule per management RPC: which actions a request is, whether it changes
something (and so is audited), what the audit log says it did, and what of an answer the
caller may see.

Secure by default: a method of a managed service without a rule here is refused (guard.py),
and tests/controlplane/api/test_method_rules.py walks the service descriptors so a new RPC
fails the suite until it gets one. Pure: what a rule needs from the store (a key's
environment, a deployment's version before an apply) comes through `StoredFacts`.

A refusal never tells a caller what it may not view: for a request naming a stored object
whose environment the rule reads from the store (`looked_up`: an API key by name), a caller
who may not view that environment is answered as if the object did not exist
(`concealed_refusal`), the same for a key of another environment as for no key at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from controlplane.api.authz import (
    ANY_ENVIRONMENT,
    KIND_API_KEY,
    KIND_ARTIFACT,
    KIND_AUDIT_EVENT,
    KIND_DEPLOYMENT,
    KIND_ENVIRONMENT,
    KIND_IDENTITY,
    KIND_JOIN_TOKEN,
    KIND_MODEL,
    KIND_MODEL_VERSION,
    KIND_REGION,
    KIND_ROLLOUT,
    Action,
    Principal,
    decide,
    plain_verb,
)
from controlplane.store import NotFoundError, ResourceKey
from meshline.v1 import api_pb2 as api
from meshline.wire import DEFAULT_ENVIRONMENT

PACKAGE = "meshline.v1"
# The services whose every call is authenticated and authorized here. AgentService, JoinService
# and ADS are the mesh's own (join tokens and mTLS); health and reflection stay open.
MANAGED_SERVICES: tuple[str, ...] = tuple(
    f"{PACKAGE}.{name}"
    for name in (
        "ApplyService",
        "ModelService",
        "EnvironmentService",
        "DeploymentService",
        "RegionService",
        "RolloutService",
        "KeyService",
        "AuditService",
        "IdentityService",
    )
)
# The longest user-given text an audit event keeps in one field.
_MAX_FIELD = 200


@dataclass(frozen=True)
class KeyFacts:
    environment: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class DeploymentFacts:
    version: str
    replicas: int


class StoredFacts(Protocol):
    """What rules read from the store (None: there is no such object)."""

    def key(self, name: str) -> KeyFacts | None: ...

    def deployment(self, environment: str, name: str) -> DeploymentFacts | None: ...


class _NoFacts:
    """Facts of a caller not authenticated (yet): nothing is read from the store for it."""

    def key(self, name: str) -> KeyFacts | None:
        return None

    def deployment(self, environment: str, name: str) -> DeploymentFacts | None:
        return None


NO_FACTS: StoredFacts = _NoFacts()


@dataclass(frozen=True)
class Event:
    """What one allowed change did, for the audit log."""

    action: Action
    detail: str


Request = Any  # a request message (for a client stream: its first message, or None)
Response = Any
ActionsOf = Callable[[Request, StoredFacts], tuple[Action, ...]]
Before = Mapping[tuple[str, str], DeploymentFacts]
EventsOf = Callable[[Request, Response, tuple[Action, ...], Before], tuple[Event, ...]]


def _no_change(request: Request) -> bool:
    return False


def _changes(request: Request) -> bool:
    return True


def _unless_dry_run(request: Request) -> bool:
    return not request.dry_run


def _done(
    request: Request, response: Response, actions: tuple[Action, ...], before: Before
) -> tuple[Event, ...]:
    return tuple(Event(a, a.verb) for a in actions)


def _nothing_before(request: Request, facts: StoredFacts) -> Before:
    return {}


@dataclass(frozen=True)
class MethodRule:
    """How one RPC is authorized and audited.

    `actions`: what the request does, each checked by authz.decide; `changes`: whether this
    request changes something (recorded in the audit log; reads and plans are not);
    `events`: what an allowed change did; `before`: store facts to read before the call, for
    `events`; `visible`: removes from an answer what the caller may not see; `looked_up`: the
    stored object the request names when the first action's environment is read from it
    (see concealed_refusal). A client-streaming call's request is its first message (None
    when there is none). Every call needs a credential: no rule lets an anonymous one in."""

    actions: ActionsOf
    changes: Callable[[Request], bool] = _no_change
    events: EventsOf = _done
    before: Callable[[Request, StoredFacts], Before] = _nothing_before
    visible: Callable[[Response, Principal], None] | None = None
    looked_up: Callable[[Request], ResourceKey] | None = None


@dataclass(frozen=True)
class Concealed:
    """A refusal that does not say whether the object exists: `answer` to the caller,
    `reason` (the real one) to the audit log; NOT_FOUND when `not_found`, else
    PERMISSION_DENIED."""

    answer: str
    reason: str
    not_found: bool


def concealed_refusal(
    rule: MethodRule, request: Request, who: Principal, actions: tuple[Action, ...]
) -> Concealed | None:
    """The refusal of a caller who may not view the environment of the stored object its
    request names (a missing object's environment is "", which only a grant of every
    environment views): a caller with some role is told the object is not found, in the very
    words the servicer uses for a missing one; a caller with no role at all, that it holds
    none. None when the caller may view it (authz.decide answers then)."""
    if rule.looked_up is None or not actions or who.may_view(actions[0].environment):
        return None
    action = actions[0]
    reason = decide(who, action).reason or f"{who.describe()} may not {action.describe()}"
    if who.grants:
        return Concealed(str(NotFoundError(rule.looked_up(request))), reason, True)
    answer = (
        f"{who.describe()} may not {plain_verb(action.verb)} {action.kind} '{action.name}': "
        "it holds no management role"
    )
    return Concealed(answer, reason, False)


def clip(text: str) -> str:
    return text if len(text) <= _MAX_FIELD else text[: _MAX_FIELD - 1] + "…"


def _env(environment: str) -> str:
    return environment or DEFAULT_ENVIRONMENT


def _plan(request: Request, verb: str) -> str:
    return "plan" if request.dry_run else verb


# --- ApplyService ------------------------------------------------------------------------


def _resource_action(resource: api.Resource, verb: str, index: int) -> Action:
    field_name = resource.WhichOneof("kind")
    if field_name is None:
        return Action(verb, "Resource", f"resources[{index}]")
    inner = getattr(resource, field_name)
    name = clip(inner.metadata.name)
    if field_name == "deployment":
        return Action(verb, KIND_DEPLOYMENT, name, clip(_env(inner.spec.environment)))
    if field_name == "environment":
        return Action(verb, KIND_ENVIRONMENT, name, name)
    kind = KIND_MODEL if field_name == "model" else KIND_REGION
    return Action(verb, kind, name)


def _apply_actions(request: api.ApplyRequest, facts: StoredFacts) -> tuple[Action, ...]:
    verb = _plan(request, "apply")
    return tuple(_resource_action(r, verb, i) for i, r in enumerate(request.resources))


def _apply_before(request: api.ApplyRequest, facts: StoredFacts) -> Before:
    before: dict[tuple[str, str], DeploymentFacts] = {}
    for resource in request.resources:
        if resource.WhichOneof("kind") == "deployment":
            dep = resource.deployment
            key = (_env(dep.spec.environment), dep.metadata.name)
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


def _apply_events(
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


def _ref_action(ref: api.ResourceRef, verb: str) -> Action:
    name = clip(ref.name)
    if ref.kind == KIND_DEPLOYMENT:
        return Action(verb, KIND_DEPLOYMENT, name, clip(_env(ref.environment)))
    if ref.kind == KIND_ENVIRONMENT:
        return Action(verb, KIND_ENVIRONMENT, name, name)
    if ref.kind in (KIND_MODEL, KIND_REGION):
        return Action(verb, ref.kind, name)
    return Action(verb, clip(ref.kind) or "Resource", name)


def _delete_actions(request: api.DeleteRequest, facts: StoredFacts) -> tuple[Action, ...]:
    verb = _plan(request, "delete")
    return tuple(_ref_action(ref, verb) for ref in request.targets)


def _delete_events(
    request: api.DeleteRequest,
    response: api.DeleteResponse,
    actions: tuple[Action, ...],
    before: Before,
) -> tuple[Event, ...]:
    return tuple(Event(_ref_action(r.target, "delete"), r.action) for r in response.results)


# --- ModelService -------------------------------------------------------------------------


def _version_name(model: str, version: str) -> str:
    return clip(f"{model}:{version}")


def _push_actions(
    header: api.PushModelVersionRequest | None, facts: StoredFacts
) -> tuple[Action, ...]:
    name = ""
    if header is not None and header.WhichOneof("content") == "header":
        name = _version_name(header.header.model, header.header.version.name)
    return (Action("push", KIND_MODEL_VERSION, name),)


def _push_events(
    request: Request,
    response: api.PushModelVersionResponse,
    actions: tuple[Action, ...],
    before: Before,
) -> tuple[Event, ...]:
    return (Event(actions[0], response.action),)


def _delete_version_events(
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


# --- DeploymentService ---------------------------------------------------------------------


def _only_visible_deployments(response: api.ListDeploymentsResponse, who: Principal) -> None:
    keep = [d for d in response.deployments if who.may_view(_env(d.spec.environment))]
    del response.deployments[:]
    response.deployments.extend(keep)


def _active_actions(
    request: api.SetDeploymentActiveRequest, facts: StoredFacts
) -> tuple[Action, ...]:
    verb = "activate" if request.active else "deactivate"
    return (Action(verb, KIND_DEPLOYMENT, clip(request.name), clip(_env(request.environment))),)


def _active_events(
    request: api.SetDeploymentActiveRequest,
    response: api.SetDeploymentActiveResponse,
    actions: tuple[Action, ...],
    before: Before,
) -> tuple[Event, ...]:
    state = "active" if request.active else "deactivated"
    detail = f"{state}" if response.changed else f"unchanged: already {state}"
    return (Event(actions[0], detail),)


def _release_actions(
    request: api.ReleaseDeploymentRequest, facts: StoredFacts
) -> tuple[Action, ...]:
    verb = _plan(request, "release")
    name = clip(request.name)
    actions = [Action(verb, KIND_DEPLOYMENT, name, clip(_env(request.source_environment)))]
    if request.target_environment:
        actions.append(Action(verb, KIND_DEPLOYMENT, name, clip(request.target_environment)))
    return tuple(actions)


def _release_events(
    request: api.ReleaseDeploymentRequest,
    response: api.ReleaseDeploymentResponse,
    actions: tuple[Action, ...],
    before: Before,
) -> tuple[Event, ...]:
    source = _env(request.source_environment)
    return (Event(actions[-1], f"from '{source}': {response.result.action}"),)


# --- KeyService ----------------------------------------------------------------------------


def _stored_key_action(verb: str, name: str, facts: StoredFacts) -> Action:
    """The action on key `name`, in the environment it is stored in ("" when there is no
    such key: only a caller of every environment gets past concealed_refusal to NOT_FOUND)."""
    found = facts.key(name)
    if found is None:
        return Action(verb, KIND_API_KEY, clip(name))
    return Action(verb, KIND_API_KEY, clip(name), found.environment, found.roles)


def _stored_key(request: Request) -> ResourceKey:
    return ResourceKey(KIND_API_KEY, request.name)


def _only_visible_keys(response: api.ListKeysResponse, who: Principal) -> None:
    keep = [k for k in response.keys if who.may_view(k.spec.environment)]
    del response.keys[:]
    response.keys.extend(keep)


def _rotate_events(
    request: api.RotateKeyRequest,
    response: api.RotateKeyResponse,
    actions: tuple[Action, ...],
    before: Before,
) -> tuple[Event, ...]:
    status = response.key.status
    return (Event(actions[0], f"rotated: key id {status.key_id}, grace {request.grace_s:g}s"),)


def _create_key_events(
    request: api.CreateKeyRequest,
    response: api.CreateKeyResponse,
    actions: tuple[Action, ...],
    before: Before,
) -> tuple[Event, ...]:
    spec = response.key.spec
    roles = ", ".join(spec.roles) or "none"
    return (Event(actions[0], f"created: key id {response.key.status.key_id}, roles {roles}"),)


# --- the table -----------------------------------------------------------------------------


def _get(kind: str, name_field: str = "name") -> ActionsOf:
    return lambda r, f: (Action("get", kind, clip(getattr(r, name_field))),)


def _list(kind: str) -> ActionsOf:
    return lambda r, f: (Action("list", kind),)


def _scoped(verb: str, kind: str) -> ActionsOf:
    return lambda r, f: (Action(verb, kind, clip(r.name), clip(_env(r.environment))),)


def _listed_in(kind: str) -> ActionsOf:
    return lambda r, f: (Action("list", kind, "", clip(r.environment) or ANY_ENVIRONMENT),)


def _method(service: str, name: str) -> str:
    return f"/{PACKAGE}.{service}/{name}"


RULES: dict[str, MethodRule] = {
    # ApplyService
    _method("ApplyService", "Apply"): MethodRule(
        _apply_actions, _unless_dry_run, _apply_events, _apply_before
    ),
    _method("ApplyService", "Delete"): MethodRule(_delete_actions, _unless_dry_run, _delete_events),
    # ModelService: the catalog every environment shares
    _method("ModelService", "ListModels"): MethodRule(_list(KIND_MODEL)),
    _method("ModelService", "GetModel"): MethodRule(_get(KIND_MODEL)),
    _method("ModelService", "DeleteModel"): MethodRule(
        lambda r, f: (Action("delete", KIND_MODEL, clip(r.name)),), _changes
    ),
    _method("ModelService", "PushModelVersion"): MethodRule(_push_actions, _changes, _push_events),
    _method("ModelService", "ListModelVersions"): MethodRule(_get(KIND_MODEL, "model")),
    _method("ModelService", "GetModelVersion"): MethodRule(
        lambda r, f: (Action("get", KIND_MODEL_VERSION, _version_name(r.model, r.version)),)
    ),
    _method("ModelService", "DeleteModelVersion"): MethodRule(
        lambda r, f: (Action("delete", KIND_MODEL_VERSION, _version_name(r.model, r.version)),),
        _changes,
        _delete_version_events,
    ),
    # Agents download on the mesh port with their region's certificate (controlplane/agents);
    # here, on the API port, it is a management read like any other.
    _method("ModelService", "DownloadArtifact"): MethodRule(
        lambda r, f: (Action("download", KIND_ARTIFACT, clip(r.sha256)),)
    ),
    # EnvironmentService
    _method("EnvironmentService", "ListEnvironments"): MethodRule(_list(KIND_ENVIRONMENT)),
    _method("EnvironmentService", "GetEnvironment"): MethodRule(_get(KIND_ENVIRONMENT)),
    _method("EnvironmentService", "DeleteEnvironment"): MethodRule(
        lambda r, f: (Action("delete", KIND_ENVIRONMENT, clip(r.name), clip(r.name)),), _changes
    ),
    # DeploymentService
    _method("DeploymentService", "SetDeploymentActive"): MethodRule(
        _active_actions, _changes, _active_events
    ),
    _method("DeploymentService", "ListDeployments"): MethodRule(
        _listed_in(KIND_DEPLOYMENT), visible=_only_visible_deployments
    ),
    _method("DeploymentService", "GetDeployment"): MethodRule(_scoped("get", KIND_DEPLOYMENT)),
    _method("DeploymentService", "DeleteDeployment"): MethodRule(
        _scoped("delete", KIND_DEPLOYMENT), _changes
    ),
    _method("DeploymentService", "ReleaseDeployment"): MethodRule(
        _release_actions, _unless_dry_run, _release_events
    ),
    # RegionService
    _method("RegionService", "ListRegions"): MethodRule(_list(KIND_REGION)),
    _method("RegionService", "GetRegion"): MethodRule(_get(KIND_REGION)),
    _method("RegionService", "DeleteRegion"): MethodRule(
        lambda r, f: (Action("delete", KIND_REGION, clip(r.name)),), _changes
    ),
    _method("RegionService", "CreateJoinToken"): MethodRule(
        lambda r, f: (Action("join-token-create", KIND_JOIN_TOKEN, clip(r.spec.region)),),
        _changes,
        lambda r, resp, a, b: (
            Event(a[0], f"created: token {resp.token.metadata.name} for region {r.spec.region}"),
        ),
    ),
    _method("RegionService", "ListJoinTokens"): MethodRule(
        lambda r, f: (Action("list", KIND_JOIN_TOKEN, clip(r.region)),)
    ),
    _method("RegionService", "RevokeJoinToken"): MethodRule(
        lambda r, f: (Action("join-token-revoke", KIND_JOIN_TOKEN, clip(r.name)),), _changes
    ),
    # RolloutService
    _method("RolloutService", "ListRollouts"): MethodRule(_scoped("get", KIND_ROLLOUT)),
    _method("RolloutService", "ControlRollout"): MethodRule(
        lambda r, f: (
            Action(
                clip(f"rollout-{r.action}"), KIND_ROLLOUT, clip(r.name), clip(_env(r.environment))
            ),
        ),
        _changes,
    ),
    _method("RolloutService", "RetryRollout"): MethodRule(
        _scoped("rollout-retry", KIND_ROLLOUT), _changes
    ),
    # KeyService
    _method("KeyService", "CreateKey"): MethodRule(
        lambda r, f: (
            Action(
                "key-create",
                KIND_API_KEY,
                clip(r.name),
                clip(r.spec.environment),
                tuple(r.spec.roles),
            ),
        ),
        _changes,
        _create_key_events,
    ),
    _method("KeyService", "ListKeys"): MethodRule(
        _listed_in(KIND_API_KEY), visible=_only_visible_keys
    ),
    _method("KeyService", "GetKey"): MethodRule(
        lambda r, f: (_stored_key_action("get", r.name, f),), looked_up=_stored_key
    ),
    _method("KeyService", "RevokeKey"): MethodRule(
        lambda r, f: (_stored_key_action("key-revoke", r.name, f),),
        _changes,
        looked_up=_stored_key,
    ),
    _method("KeyService", "RotateKey"): MethodRule(
        lambda r, f: (_stored_key_action("key-rotate", r.name, f),),
        _changes,
        _rotate_events,
        looked_up=_stored_key,
    ),
    # AuditService: the servicer filters events by what the caller may view
    _method("AuditService", "ListAuditEvents"): MethodRule(_listed_in(KIND_AUDIT_EVENT)),
    # IdentityService: any valid credential
    _method("IdentityService", "WhoAmI"): MethodRule(
        lambda r, f: (Action("whoami", KIND_IDENTITY),)
    ),
}


def managed(method: str) -> bool:
    """Whether `method` (`/package.Service/Method`) belongs to a service authorized here."""
    service = method.lstrip("/").split("/", 1)[0]
    return service in MANAGED_SERVICES


def rule_for(method: str) -> MethodRule | None:
    return RULES.get(method)
