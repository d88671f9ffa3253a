"""One authorization rule per management RPC: which actions a request is, whether it changes
something (and so is audited), what the audit log says it did, and what of an answer the
caller may see.

Secure by default: a method of a managed service without a rule here is refused (guard.py),
and tests/controlplane/api/test_method_rules.py walks the service descriptors so a new RPC
fails the suite until it gets one. This module is the table only; what a rule is made of
lives in rule_types.py, what requests are as actions in request_actions.py, what changes say
in the audit log in change_events.py, what of a list the caller sees in visible_answers.py,
and the refusal that hides whether an object exists in concealment.py.
"""

from __future__ import annotations

from controlplane.api.authz import (
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
)
from controlplane.api.change_events import (
    active_events,
    apply_before,
    apply_events,
    create_key_events,
    delete_events,
    delete_version_events,
    join_token_events,
    push_events,
    release_events,
    rotate_events,
)
from controlplane.api.request_actions import (
    active_actions,
    apply_actions,
    clip,
    control_rollout_actions,
    create_key_actions,
    delete_actions,
    get_one,
    list_all,
    listed_in,
    push_actions,
    release_actions,
    scoped,
    stored_key,
    stored_key_action,
    version_name,
)
from controlplane.api.rule_types import MethodRule, changes, unless_dry_run
from controlplane.api.visible_answers import only_visible_deployments, only_visible_keys

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


def _method(service: str, name: str) -> str:
    return f"/{PACKAGE}.{service}/{name}"


RULES: dict[str, MethodRule] = {
    # ApplyService
    _method("ApplyService", "Apply"): MethodRule(
        apply_actions, unless_dry_run, apply_events, apply_before
    ),
    _method("ApplyService", "Delete"): MethodRule(delete_actions, unless_dry_run, delete_events),
    # ModelService: the catalog every environment shares
    _method("ModelService", "ListModels"): MethodRule(list_all(KIND_MODEL)),
    _method("ModelService", "GetModel"): MethodRule(get_one(KIND_MODEL)),
    _method("ModelService", "DeleteModel"): MethodRule(
        lambda r, f: (Action("delete", KIND_MODEL, clip(r.name)),), changes
    ),
    _method("ModelService", "PushModelVersion"): MethodRule(push_actions, changes, push_events),
    _method("ModelService", "ListModelVersions"): MethodRule(get_one(KIND_MODEL, "model")),
    _method("ModelService", "GetModelVersion"): MethodRule(
        lambda r, f: (Action("get", KIND_MODEL_VERSION, version_name(r.model, r.version)),)
    ),
    _method("ModelService", "DeleteModelVersion"): MethodRule(
        lambda r, f: (Action("delete", KIND_MODEL_VERSION, version_name(r.model, r.version)),),
        changes,
        delete_version_events,
    ),
    # Agents download on the mesh port with their region's certificate (controlplane/agents);
    # here, on the API port, it is a management read like any other.
    _method("ModelService", "DownloadArtifact"): MethodRule(
        lambda r, f: (Action("download", KIND_ARTIFACT, clip(r.sha256)),)
    ),
    # EnvironmentService
    _method("EnvironmentService", "ListEnvironments"): MethodRule(list_all(KIND_ENVIRONMENT)),
    _method("EnvironmentService", "GetEnvironment"): MethodRule(get_one(KIND_ENVIRONMENT)),
    _method("EnvironmentService", "DeleteEnvironment"): MethodRule(
        lambda r, f: (Action("delete", KIND_ENVIRONMENT, clip(r.name), clip(r.name)),), changes
    ),
    # DeploymentService
    _method("DeploymentService", "SetDeploymentActive"): MethodRule(
        active_actions, changes, active_events
    ),
    _method("DeploymentService", "ListDeployments"): MethodRule(
        listed_in(KIND_DEPLOYMENT), visible=only_visible_deployments
    ),
    _method("DeploymentService", "GetDeployment"): MethodRule(scoped("get", KIND_DEPLOYMENT)),
    _method("DeploymentService", "DeleteDeployment"): MethodRule(
        scoped("delete", KIND_DEPLOYMENT), changes
    ),
    _method("DeploymentService", "ReleaseDeployment"): MethodRule(
        release_actions, unless_dry_run, release_events
    ),
    # RegionService
    _method("RegionService", "ListRegions"): MethodRule(list_all(KIND_REGION)),
    _method("RegionService", "GetRegion"): MethodRule(get_one(KIND_REGION)),
    _method("RegionService", "DeleteRegion"): MethodRule(
        lambda r, f: (Action("delete", KIND_REGION, clip(r.name)),), changes
    ),
    _method("RegionService", "CreateJoinToken"): MethodRule(
        lambda r, f: (Action("join-token-create", KIND_JOIN_TOKEN, clip(r.spec.region)),),
        changes,
        join_token_events,
    ),
    _method("RegionService", "ListJoinTokens"): MethodRule(
        lambda r, f: (Action("list", KIND_JOIN_TOKEN, clip(r.region)),)
    ),
    _method("RegionService", "RevokeJoinToken"): MethodRule(
        lambda r, f: (Action("join-token-revoke", KIND_JOIN_TOKEN, clip(r.name)),), changes
    ),
    # RolloutService
    _method("RolloutService", "ListRollouts"): MethodRule(scoped("get", KIND_ROLLOUT)),
    _method("RolloutService", "ControlRollout"): MethodRule(control_rollout_actions, changes),
    _method("RolloutService", "RetryRollout"): MethodRule(
        scoped("rollout-retry", KIND_ROLLOUT), changes
    ),
    # KeyService
    _method("KeyService", "CreateKey"): MethodRule(create_key_actions, changes, create_key_events),
    _method("KeyService", "ListKeys"): MethodRule(
        listed_in(KIND_API_KEY), visible=only_visible_keys
    ),
    _method("KeyService", "GetKey"): MethodRule(
        lambda r, f: (stored_key_action("get", r.name, f),), looked_up=stored_key
    ),
    _method("KeyService", "RevokeKey"): MethodRule(
        lambda r, f: (stored_key_action("key-revoke", r.name, f),),
        changes,
        looked_up=stored_key,
    ),
    _method("KeyService", "RotateKey"): MethodRule(
        lambda r, f: (stored_key_action("key-rotate", r.name, f),),
        changes,
        rotate_events,
        looked_up=stored_key,
    ),
    # AuditService: the servicer filters events by what the caller may view
    _method("AuditService", "ListAuditEvents"): MethodRule(listed_in(KIND_AUDIT_EVENT)),
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
