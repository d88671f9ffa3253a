"""decide(): every role against every kind of action, as a table; and the refusal messages."""

from __future__ import annotations

import pytest

from controlplane.api.authz import (
    ANONYMOUS,
    ANY_ENVIRONMENT,
    Action,
    Grant,
    Principal,
    PrincipalKind,
    Role,
    decide,
    decide_all,
    key_grants,
)


def key(name: str, *grants: tuple[str, str]) -> Principal:
    return Principal(name, PrincipalKind.KEY, tuple(Grant(Role(r), e) for r, e in grants))


ADMIN = key("root", ("admin", ""))
STAGING_ADMIN = key("stage-root", ("admin", "staging"))
DEPLOYER = key("deployer-all", ("deployer", ""))
STAGING_DEPLOYER = key("ci", ("deployer", "staging"))
VIEWER = key("auditor", ("viewer", ""))
STAGING_VIEWER = key("peek", ("viewer", "staging"))
MIXED = key("mixed", ("deployer", "staging"), ("viewer", "production"))
NO_ROLE = key("inference-only")
IDP_ADMIN = Principal("jwt:https://idp#alice", PrincipalKind.JWT, (Grant(Role.ADMIN),))

PRINCIPALS = {
    "admin": ADMIN,
    "staging-admin": STAGING_ADMIN,
    "deployer": DEPLOYER,
    "staging-deployer": STAGING_DEPLOYER,
    "viewer": VIEWER,
    "staging-viewer": STAGING_VIEWER,
    "mixed": MIXED,
    "no-role": NO_ROLE,
    "anonymous": ANONYMOUS,
    "idp-admin": IDP_ADMIN,
}

# (action, the principals allowed to do it: every other one is refused)
TABLE: list[tuple[Action, set[str]]] = [
    # reads of kinds every environment shares: anyone with a role
    (Action("list", "Model"), {*PRINCIPALS} - {"no-role", "anonymous"}),
    (Action("get", "Region", "eu"), {*PRINCIPALS} - {"no-role", "anonymous"}),
    (Action("get", "Environment", "production"), {*PRINCIPALS} - {"no-role", "anonymous"}),
    (Action("download", "Artifact", "ab12"), {*PRINCIPALS} - {"no-role", "anonymous"}),
    # reads in one environment: viewers (and above) of it
    (
        Action("get", "Deployment", "fraud", "production"),
        {"admin", "deployer", "viewer", "mixed", "idp-admin"},
    ),
    (
        Action("get", "Deployment", "fraud", "staging"),
        {
            "admin",
            "staging-admin",
            "deployer",
            "staging-deployer",
            "viewer",
            "staging-viewer",
            "mixed",
            "idp-admin",
        },
    ),
    (
        Action("plan", "Deployment", "fraud", "production"),
        {"admin", "deployer", "viewer", "mixed", "idp-admin"},
    ),
    # a list over "the caller's environments": anyone with a role (the answer is filtered)
    (Action("list", "Deployment", "", ANY_ENVIRONMENT), {*PRINCIPALS} - {"no-role", "anonymous"}),
    # join tokens, even listed: admins of every environment
    (Action("list", "JoinToken", "eu"), {"admin", "idp-admin"}),
    # the model catalog: any deployer, wherever
    (
        Action("push", "ModelVersion", "m:v1"),
        {"admin", "staging-admin", "deployer", "staging-deployer", "mixed", "idp-admin"},
    ),
    (
        Action("apply", "Model", "m"),
        {"admin", "staging-admin", "deployer", "staging-deployer", "mixed", "idp-admin"},
    ),
    # deployments, rollouts, releases: deployers of that environment
    (
        Action("apply", "Deployment", "fraud", "production"),
        {"admin", "deployer", "idp-admin"},
    ),
    (
        Action("apply", "Deployment", "fraud", "staging"),
        {"admin", "staging-admin", "deployer", "staging-deployer", "mixed", "idp-admin"},
    ),
    (
        Action("rollout-pause", "Rollout", "fraud", "staging"),
        {"admin", "staging-admin", "deployer", "staging-deployer", "mixed", "idp-admin"},
    ),
    (
        Action("deactivate", "Deployment", "fraud", "production"),
        {"admin", "deployer", "idp-admin"},
    ),
    # environments: admins of that environment; regions and join tokens: of every environment
    (Action("apply", "Environment", "staging", "staging"), {"admin", "staging-admin", "idp-admin"}),
    (Action("delete", "Environment", "production", "production"), {"admin", "idp-admin"}),
    (Action("apply", "Region", "eu"), {"admin", "idp-admin"}),
    (Action("delete", "Region", "eu"), {"admin", "idp-admin"}),
    (Action("join-token-create", "JoinToken", "eu"), {"admin", "idp-admin"}),
    # keys: deployers of the key's environment, with roles not above their own
    (
        Action("key-create", "ApiKey", "ci-2", "staging", ("deployer",)),
        {"admin", "staging-admin", "deployer", "staging-deployer", "mixed", "idp-admin"},
    ),
    (
        Action("key-create", "ApiKey", "ci-2", "staging", ("admin",)),
        {"admin", "staging-admin", "idp-admin"},
    ),
    (
        Action("key-create", "ApiKey", "everywhere", "", ("viewer",)),
        {"admin", "deployer", "idp-admin"},
    ),
    (
        Action("key-create", "ApiKey", "plain", "production", ("reader",)),
        {"admin", "deployer", "idp-admin"},
    ),
    (Action("key-rotate", "ApiKey", "admin", "", ("admin",)), {"admin", "idp-admin"}),
    (Action("key-revoke", "ApiKey", "admin", "", ("admin",)), {"admin", "idp-admin"}),
    # the audit log: viewers of that environment
    (
        Action("list", "AuditEvent", "", "production"),
        {"admin", "deployer", "viewer", "mixed", "idp-admin"},
    ),
    # who am I: anyone authenticated, even with no role
    (Action("whoami", "Identity"), {*PRINCIPALS} - {"anonymous"}),
    # a kind no rule knows: only an admin of everything
    (Action("apply", "Resource", "resources[0]"), {"admin", "idp-admin"}),
]


@pytest.mark.parametrize(
    ("action", "who"),
    [(action, who) for action, _ in TABLE for who in PRINCIPALS],
    ids=lambda v: v.describe() if isinstance(v, Action) else str(v),
)
def test_decide(action: Action, who: str) -> None:
    allowed = dict((a, s) for a, s in TABLE)[action]
    decision = decide(PRINCIPALS[who], action)
    assert decision.allowed is (who in allowed), decision.reason
    if not decision.allowed:
        assert decision.reason.startswith(PRINCIPALS[who].describe())


def test_a_refusal_names_verb_kind_name_environment_and_what_the_caller_holds() -> None:
    decision = decide(STAGING_DEPLOYER, Action("apply", "Deployment", "fraud", "production"))
    assert decision.reason == (
        "key 'ci' (deployer in staging) may not apply Deployment 'fraud' in environment "
        "'production'"
    )
    jwt = Principal("jwt:https://idp#bob", PrincipalKind.JWT, (Grant(Role.VIEWER),))
    assert decide(jwt, Action("rollout-abort", "Rollout", "fraud", "staging")).reason == (
        "'jwt:https://idp#bob' (viewer in all environments) may not abort Rollout 'fraud' in "
        "environment 'staging'"
    )
    assert decide(NO_ROLE, Action("list", "Model")).reason == (
        "key 'inference-only' (no management role) may not list Model: it holds no management role"
    )


def test_escalation_is_refused_with_the_reason() -> None:
    decision = decide(STAGING_DEPLOYER, Action("key-create", "ApiKey", "x", "staging", ("admin",)))
    assert not decision.allowed
    assert "role admin, above the caller's own (deployer)" in decision.reason
    everywhere = decide(STAGING_DEPLOYER, Action("key-create", "ApiKey", "y", "", ()))
    assert not everywhere.allowed
    assert "in every environment" in everywhere.reason


def test_decide_all_refuses_at_the_first_refused_action() -> None:
    release = [
        Action("release", "Deployment", "fraud", "staging"),
        Action("release", "Deployment", "fraud", "production"),
    ]
    assert decide_all(DEPLOYER, release).allowed
    refused = decide_all(STAGING_DEPLOYER, release)
    assert not refused.allowed and "'production'" in refused.reason
    # an empty call still needs some role
    assert decide_all(STAGING_VIEWER, []).allowed
    assert not decide_all(NO_ROLE, []).allowed


@pytest.mark.parametrize(
    ("environment", "roles", "grants"),
    [
        ("", ["admin"], (Grant(Role.ADMIN, ""),)),
        ("staging", ["deployer", "reader"], (Grant(Role.DEPLOYER, "staging"),)),
        (
            "production",
            ["viewer", "deployer"],
            (
                Grant(Role.DEPLOYER, "production"),
                Grant(Role.VIEWER, "production"),
            ),
        ),
        ("production", ["reader"], ()),
    ],
)
def test_key_grants(environment: str, roles: list[str], grants: tuple[Grant, ...]) -> None:
    assert key_grants(environment, roles) == grants


@pytest.mark.parametrize(
    ("who", "environments"),
    [
        (ADMIN, None),
        (VIEWER, None),
        (STAGING_VIEWER, frozenset({"staging"})),
        (MIXED, frozenset({"staging", "production"})),
        (key("both", ("viewer", "staging"), ("admin", "")), None),
        (NO_ROLE, frozenset()),
        (ANONYMOUS, frozenset()),
    ],
)
def test_viewable_environments_say_what_may_view_says(
    who: Principal, environments: frozenset[str] | None
) -> None:
    """The filter a listing's query applies: None (every environment) or exactly the
    environments `may_view` answers yes for."""
    assert who.viewable_environments() == environments
    for env in ("staging", "production", "dev"):
        assert who.may_view(env) == (environments is None or env in environments)
