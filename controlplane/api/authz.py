"""Who may do what through the management API: roles per environment, one pure decision.

`decide(principal, action)` answers every call; the per-method table (method_rules.py) says
which actions a request is. Roles, ranked viewer < deployer < admin, each held in one
environment or in all of them (a `Grant`):

- admin: everything it covers; environments, regions and join tokens need an admin of all
  environments (an Environment document's environment is its own name).
- deployer: the shared model catalog (models and their versions: any deployer), and in its
  environments deployments, releases, rollouts and API keys, never a key above itself.
- viewer: every read and plan in its environments; the kinds every environment shares
  (models, environments, regions) are visible to anyone with any grant.

No I/O, no clock: table tests cover it (tests/controlplane/api/test_authz.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

# Kinds named by actions (the resource kinds, plus what the API manages beside them).
KIND_MODEL = "Model"
KIND_MODEL_VERSION = "ModelVersion"
KIND_ENVIRONMENT = "Environment"
KIND_DEPLOYMENT = "Deployment"
KIND_REGION = "Region"
KIND_ROLLOUT = "Rollout"
KIND_API_KEY = "ApiKey"
KIND_JOIN_TOKEN = "JoinToken"
KIND_AUDIT_EVENT = "AuditEvent"
KIND_ARTIFACT = "Artifact"
KIND_IDENTITY = "Identity"

# Shared by every environment: reading them needs any grant; changing the catalog any deployer.
CATALOG_KINDS: tuple[str, ...] = (KIND_MODEL, KIND_MODEL_VERSION)
SHARED_KINDS: tuple[str, ...] = (*CATALOG_KINDS, KIND_ENVIRONMENT, KIND_REGION, KIND_ARTIFACT)
# Changed by admins only (Environment: an admin of that environment).
ADMIN_KINDS: tuple[str, ...] = (KIND_ENVIRONMENT, KIND_REGION, KIND_JOIN_TOKEN)
# Owned by one environment: viewers read them, deployers change them, there.
SCOPED_KINDS: tuple[str, ...] = (KIND_DEPLOYMENT, KIND_ROLLOUT, KIND_API_KEY, KIND_AUDIT_EVENT)

READ_VERBS: frozenset[str] = frozenset({"get", "list", "plan", "download", "whoami"})

# `Grant.environment` for a grant in every environment.
ALL_ENVIRONMENTS = ""
# `Action.environment` of a list over the caller's own environments (the answer is filtered).
ANY_ENVIRONMENT = "*"


class Role(StrEnum):
    VIEWER = "viewer"
    DEPLOYER = "deployer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Role.VIEWER: 1, Role.DEPLOYER: 2, Role.ADMIN: 3}
MANAGEMENT_ROLES: tuple[str, ...] = tuple(r.value for r in Role)


class PrincipalKind(StrEnum):
    KEY = "key"  # an API key of this control plane
    JWT = "jwt"  # an identity provider's token
    ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Grant:
    """One role, in one environment or (ALL_ENVIRONMENTS) all of them."""

    role: Role
    environment: str = ALL_ENVIRONMENTS

    def covers(self, environment: str) -> bool:
        """Whether the grant reaches `environment` ("" = a thing of every environment, which
        only an all-environment grant reaches)."""
        return self.environment == ALL_ENVIRONMENTS or self.environment == environment

    def __str__(self) -> str:
        where = self.environment or "all environments"
        return f"{self.role} in {where}"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: `name` is a key's name or `jwt:<issuer>#<subject>`."""

    name: str
    kind: PrincipalKind
    grants: tuple[Grant, ...] = ()
    expires_at: float | None = None  # epoch seconds; None = never

    def role_in(self, environment: str) -> Role | None:
        """The highest role that reaches `environment`."""
        roles = [g.role for g in self.grants if g.covers(environment)]
        return max(roles, key=lambda r: r.rank) if roles else None

    def highest_role(self) -> Role | None:
        """The highest role held anywhere."""
        return max((g.role for g in self.grants), key=lambda r: r.rank, default=None)

    def may_view(self, environment: str) -> bool:
        return self.role_in(environment) is not None

    def viewable_environments(self) -> frozenset[str] | None:
        """The environments `may_view` answers yes for, as a filter a query can apply:
        None when a grant reaches every environment."""
        if any(g.environment == ALL_ENVIRONMENTS for g in self.grants):
            return None
        return frozenset(g.environment for g in self.grants)

    def describe(self) -> str:
        """`key 'ci' (deployer in staging)`: who, and what it holds, for a refusal."""
        who = f"key '{self.name}'" if self.kind is PrincipalKind.KEY else f"'{self.name}'"
        if self.kind is PrincipalKind.ANONYMOUS:
            return "an anonymous caller"
        held = ", ".join(str(g) for g in self.grants) or "no management role"
        return f"{who} ({held})"


ANONYMOUS = Principal("anonymous", PrincipalKind.ANONYMOUS)


@dataclass(frozen=True)
class Action:
    """One thing a call does to one object. `key_roles`: for an ApiKey changed (created,
    revoked, rotated), the management roles the key has or would have."""

    verb: str
    kind: str
    name: str = ""
    environment: str = ""
    key_roles: tuple[str, ...] = ()

    @property
    def reads(self) -> bool:
        return self.verb in READ_VERBS

    def describe(self) -> str:
        """`apply Deployment 'fraud' in environment 'production'`."""
        text = f"{plain_verb(self.verb)} {self.kind}"
        if self.name:
            text += f" '{self.name}'"
        if self.kind in SCOPED_KINDS and self.environment != ANY_ENVIRONMENT:
            where = f"environment '{self.environment}'" if self.environment else "every environment"
            text += f" in {where}"
        return text


# Audit verbs name what they act on ("key-create"); a refusal says the verb alone ("create").
_VERB_PREFIXES = ("rollout-", "key-", "join-token-")


def plain_verb(verb: str) -> str:
    for prefix in _VERB_PREFIXES:
        if verb.startswith(prefix):
            return verb[len(prefix) :]
    return verb


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""  # why not: names the verb, kind, name, environment and what the caller holds


ALLOW = Decision(True)


def decide(principal: Principal, action: Action) -> Decision:
    """Whether `principal` may do `action`, and if not, a message saying why."""
    if principal.kind is PrincipalKind.ANONYMOUS:
        return _deny(principal, action, "a credential is required")
    if action.kind == KIND_IDENTITY or principal.role_in(ALL_ENVIRONMENTS) is Role.ADMIN:
        return ALLOW
    if action.reads:
        return _decide_read(principal, action)
    return _decide_change(principal, action)


def decide_all(principal: Principal, actions: Sequence[Action]) -> Decision:
    """The first refusal among `actions`, else allowed. A call that names no action (an empty
    apply) still needs some management role."""
    if not actions and not principal.grants:
        reason = f"{principal.describe()} may not call the management API: it holds no role"
        return Decision(False, reason)
    for action in actions:
        decision = decide(principal, action)
        if not decision.allowed:
            return decision
    return ALLOW


def management_roles(roles: Sequence[str]) -> tuple[Role, ...]:
    """The management roles among a key's roles (the rest are access-policy roles)."""
    return tuple(Role(r) for r in sorted(set(roles)) if r in MANAGEMENT_ROLES)


def key_grants(environment: str, roles: Sequence[str]) -> tuple[Grant, ...]:
    """What an API key may do in the management API: its management roles in its
    environment (all of them when it names none)."""
    return tuple(Grant(role, environment) for role in management_roles(roles))


def _decide_read(principal: Principal, action: Action) -> Decision:
    if action.kind == KIND_JOIN_TOKEN:
        return _need(principal, action, Role.ADMIN, ALL_ENVIRONMENTS, "only an admin may")
    if action.kind in SHARED_KINDS or action.environment == ANY_ENVIRONMENT:
        if principal.grants:
            return ALLOW
        return _deny(principal, action, "it holds no management role")
    return _need(principal, action, Role.VIEWER, action.environment)


def _decide_change(principal: Principal, action: Action) -> Decision:
    if action.kind in CATALOG_KINDS:
        highest = principal.highest_role()
        if highest is not None and highest.rank >= Role.DEPLOYER.rank:
            return ALLOW
        return _deny(
            principal, action, "the model catalog needs a deployer or admin role (any environment)"
        )
    if action.kind in ADMIN_KINDS:
        environment = action.environment if action.kind == KIND_ENVIRONMENT else ALL_ENVIRONMENTS
        scope = "that environment" if environment else "all environments"
        return _need(principal, action, Role.ADMIN, environment, f"only an admin of {scope} may")
    if action.kind in SCOPED_KINDS:
        decision = _need(principal, action, Role.DEPLOYER, action.environment)
        if decision.allowed and action.kind == KIND_API_KEY:
            return _no_escalation(principal, action)
        return decision
    return _deny(principal, action, f"no rule allows changing {action.kind}")


def _no_escalation(principal: Principal, action: Action) -> Decision:
    """A key's management roles cannot be above its creator's role in the key's scope."""
    own = principal.role_in(action.environment)
    assert own is not None  # the caller checked the deployer role first
    above = [r for r in management_roles(action.key_roles) if r.rank > own.rank]
    if not above:
        return ALLOW
    return _deny(
        principal,
        action,
        f"the key has role {', '.join(above)}, above the caller's own ({own}); "
        "a key's management roles cannot be above its creator's",
    )


def _need(
    principal: Principal, action: Action, role: Role, environment: str, why: str = ""
) -> Decision:
    held = principal.role_in(environment)
    if held is not None and held.rank >= role.rank:
        return ALLOW
    return _deny(principal, action, why)


def _deny(principal: Principal, action: Action, why: str = "") -> Decision:
    reason = f"{principal.describe()} may not {action.describe()}"
    return Decision(False, f"{reason}: {why}" if why else reason)
