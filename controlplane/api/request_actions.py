"""What a management request is, as the actions authz.decide checks: the verb, the kind, the
name and the environment each request names (the default environment where it names none),
user text clipped to what an audit event keeps in one field.

Pure: a key's environment and roles, which the request does not say, come through
`StoredFacts` (a key not stored: no environment, see concealment.py).
"""

from __future__ import annotations

from controlplane.api.authz import (
    ANY_ENVIRONMENT,
    KIND_API_KEY,
    KIND_DEPLOYMENT,
    KIND_ENVIRONMENT,
    KIND_MODEL,
    KIND_MODEL_VERSION,
    KIND_REGION,
    KIND_ROLLOUT,
    Action,
)
from controlplane.api.rule_types import ActionsOf, Request, StoredFacts
from controlplane.store import ResourceKey
from meshline.v1 import api_pb2 as api
from meshline.wire import DEFAULT_ENVIRONMENT

# The longest user-given text an audit event keeps in one field.
_MAX_FIELD = 200


def clip(text: str) -> str:
    return text if len(text) <= _MAX_FIELD else text[: _MAX_FIELD - 1] + "…"


def env_or_default(environment: str) -> str:
    return environment or DEFAULT_ENVIRONMENT


def _plan(request: Request, verb: str) -> str:
    return "plan" if request.dry_run else verb


# --- the common shapes ----------------------------------------------------------------------


def get_one(kind: str, name_field: str = "name") -> ActionsOf:
    return lambda r, f: (Action("get", kind, clip(getattr(r, name_field))),)


def list_all(kind: str) -> ActionsOf:
    return lambda r, f: (Action("list", kind),)


def scoped(verb: str, kind: str) -> ActionsOf:
    return lambda r, f: (Action(verb, kind, clip(r.name), clip(env_or_default(r.environment))),)


def listed_in(kind: str) -> ActionsOf:
    return lambda r, f: (Action("list", kind, "", clip(r.environment) or ANY_ENVIRONMENT),)


# --- ApplyService ---------------------------------------------------------------------------


def _resource_action(resource: api.Resource, verb: str, index: int) -> Action:
    field_name = resource.WhichOneof("kind")
    if field_name is None:
        return Action(verb, "Resource", f"resources[{index}]")
    inner = getattr(resource, field_name)
    name = clip(inner.metadata.name)
    if field_name == "deployment":
        return Action(verb, KIND_DEPLOYMENT, name, clip(env_or_default(inner.spec.environment)))
    if field_name == "environment":
        return Action(verb, KIND_ENVIRONMENT, name, name)
    kind = KIND_MODEL if field_name == "model" else KIND_REGION
    return Action(verb, kind, name)


def apply_actions(request: api.ApplyRequest, facts: StoredFacts) -> tuple[Action, ...]:
    verb = _plan(request, "apply")
    return tuple(_resource_action(r, verb, i) for i, r in enumerate(request.resources))


def ref_action(ref: api.ResourceRef, verb: str) -> Action:
    name = clip(ref.name)
    if ref.kind == KIND_DEPLOYMENT:
        return Action(verb, KIND_DEPLOYMENT, name, clip(env_or_default(ref.environment)))
    if ref.kind == KIND_ENVIRONMENT:
        return Action(verb, KIND_ENVIRONMENT, name, name)
    if ref.kind in (KIND_MODEL, KIND_REGION):
        return Action(verb, ref.kind, name)
    return Action(verb, clip(ref.kind) or "Resource", name)


def delete_actions(request: api.DeleteRequest, facts: StoredFacts) -> tuple[Action, ...]:
    verb = _plan(request, "delete")
    return tuple(ref_action(ref, verb) for ref in request.targets)


# --- ModelService ---------------------------------------------------------------------------


def version_name(model: str, version: str) -> str:
    return clip(f"{model}:{version}")


def push_actions(
    header: api.PushModelVersionRequest | None, facts: StoredFacts
) -> tuple[Action, ...]:
    name = ""
    if header is not None and header.WhichOneof("content") == "header":
        name = version_name(header.header.model, header.header.version.name)
    return (Action("push", KIND_MODEL_VERSION, name),)


# --- DeploymentService ----------------------------------------------------------------------


def active_actions(
    request: api.SetDeploymentActiveRequest, facts: StoredFacts
) -> tuple[Action, ...]:
    verb = "activate" if request.active else "deactivate"
    return (
        Action(
            verb, KIND_DEPLOYMENT, clip(request.name), clip(env_or_default(request.environment))
        ),
    )


def release_actions(
    request: api.ReleaseDeploymentRequest, facts: StoredFacts
) -> tuple[Action, ...]:
    verb = _plan(request, "release")
    name = clip(request.name)
    actions = [
        Action(verb, KIND_DEPLOYMENT, name, clip(env_or_default(request.source_environment)))
    ]
    if request.target_environment:
        actions.append(Action(verb, KIND_DEPLOYMENT, name, clip(request.target_environment)))
    return tuple(actions)


# --- RolloutService -------------------------------------------------------------------------


def control_rollout_actions(
    request: api.ControlRolloutRequest, facts: StoredFacts
) -> tuple[Action, ...]:
    return (
        Action(
            clip(f"rollout-{request.action}"),
            KIND_ROLLOUT,
            clip(request.name),
            clip(env_or_default(request.environment)),
        ),
    )


# --- KeyService -----------------------------------------------------------------------------


def create_key_actions(request: api.CreateKeyRequest, facts: StoredFacts) -> tuple[Action, ...]:
    return (
        Action(
            "key-create",
            KIND_API_KEY,
            clip(request.name),
            clip(request.spec.environment),
            tuple(request.spec.roles),
        ),
    )


def stored_key_action(verb: str, name: str, facts: StoredFacts) -> Action:
    """The action on key `name`, in the environment it is stored in ("" when there is no
    such key: only a caller of every environment gets past concealed_refusal to NOT_FOUND)."""
    found = facts.key(name)
    if found is None:
        return Action(verb, KIND_API_KEY, clip(name))
    return Action(verb, KIND_API_KEY, clip(name), found.environment, found.roles)


def stored_key(request: Request) -> ResourceKey:
    """The key a request names by `name` (MethodRule.looked_up)."""
    return ResourceKey(KIND_API_KEY, request.name)
