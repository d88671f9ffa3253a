"""Table tests of the `access` and `rate` policies after the collision rule.

Both restrict: a mandatory environment rule and the deployment's own rule both apply (a request
must pass every access rule; every rate limit holds, the stricter per dimension wins). An
optional environment rule is replaced by the deployment's own. With no access policy at all,
the default rule applies: any API key in scope, nobody anonymous.
"""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.policy import resolve_deployment
from controlplane.policy.access import (
    DEFAULT_SOURCE,
    AccessSettings,
    CallerRule,
    ClaimRule,
    FirewallRule,
    JwtCaller,
    JwtIssuer,
    RateSettings,
    TokenBucket,
)
from tests.controlplane.policy.world import M, O, dep, env, regions, rule

ENV_MANDATORY = "environment 'production' mandatory"
ENV_OPTIONAL = "environment 'production' optional"
DEPLOYMENT = "deployment 'mnist'"
ROLES_ML = {"access": {"roles": ["ml"]}}
KEY_ALICE = {"access": {"keys": ["alice"]}}
OPEN = {"access": {"anonymous": True}}


def _access(env_rules: list[Any], dep_rules: list[Any]) -> AccessSettings:
    return resolve_deployment(dep(dep_rules), env(env_rules), regions()).access


def _rate(env_rules: list[Any], dep_rules: list[Any]) -> RateSettings:
    return resolve_deployment(dep(dep_rules), env(env_rules), regions()).rate


@pytest.mark.parametrize(
    ("env_rules", "dep_rules", "callers"),
    [
        pytest.param([], [], (CallerRule(DEFAULT_SOURCE),), id="no-policy-any-key-in-scope"),
        pytest.param(
            [rule(ROLES_ML, M)],
            [rule(KEY_ALICE)],
            (
                CallerRule(ENV_MANDATORY, roles=("ml",)),
                CallerRule(DEPLOYMENT, keys=("alice",)),
            ),
            id="mandatory-env-and-deployment-both-apply",
        ),
        pytest.param(
            [rule(ROLES_ML, O)],
            [rule(KEY_ALICE)],
            (CallerRule(DEPLOYMENT, keys=("alice",)),),
            id="optional-env-replaced-by-deployment",
        ),
        pytest.param(
            [rule(ROLES_ML, O)],
            [],
            (CallerRule(ENV_OPTIONAL, roles=("ml",)),),
            id="optional-env-alone",
        ),
        pytest.param(
            [], [rule(OPEN)], (CallerRule(DEPLOYMENT, anonymous=True),), id="deployment-alone"
        ),
        pytest.param(
            [rule({"access": {}}, M)],
            [rule(OPEN)],
            (CallerRule(ENV_MANDATORY), CallerRule(DEPLOYMENT, anonymous=True)),
            id="mandatory-key-beats-an-open-deployment",
        ),
    ],
)
def test_access_collision_rule(
    env_rules: list[Any], dep_rules: list[Any], callers: tuple[CallerRule, ...]
) -> None:
    assert _access(env_rules, dep_rules).callers == callers


@pytest.mark.parametrize(
    ("env_rules", "dep_rules", "anonymous"),
    [
        pytest.param([], [], False, id="secure-by-default"),
        pytest.param([], [rule(OPEN)], True, id="written-anonymous"),
        pytest.param([rule(OPEN, M)], [rule(OPEN)], True, id="every-rule-anonymous"),
        pytest.param([rule({"access": {}}, M)], [rule(OPEN)], False, id="one-rule-wants-a-key"),
        pytest.param([rule(OPEN, M)], [rule(KEY_ALICE)], False, id="deployment-wants-a-key"),
    ],
)
def test_anonymous_only_when_every_rule_allows_it(
    env_rules: list[Any], dep_rules: list[Any], anonymous: bool
) -> None:
    assert _access(env_rules, dep_rules).anonymous is anonymous


def test_firewalls_of_every_rule_apply_and_jwt_issuers_are_collected() -> None:
    jwks = '{"keys": []}'
    env_rule = {
        "access": {
            "firewall": {"deny": ["10.0.0.0/8"]},
            "jwt": [
                {
                    "issuer": "https://sso.example.com",
                    "jwks": jwks,
                    "audiences": ["meshline"],
                    "claims": [{"claim": "groups", "values": ["ml", "ops"]}],
                }
            ],
        }
    }
    dep_rule = {"access": {"firewall": {"allow": ["192.168.0.0/16"], "trusted_hops": 1}}}
    access = _access([rule(env_rule, M)], [rule(dep_rule)])
    assert access.firewalls == (
        FirewallRule(ENV_MANDATORY, deny=("10.0.0.0/8",)),
        FirewallRule(DEPLOYMENT, allow=("192.168.0.0/16",), trusted_hops=1),
    )
    assert access.callers[0].jwt == (
        JwtCaller(
            "https://sso.example.com",
            ("meshline",),
            (ClaimRule("groups", ("ml", "ops")),),
        ),
    )
    assert access.issuers == (JwtIssuer("https://sso.example.com", jwks=jwks),)


@pytest.mark.parametrize(
    ("env_rules", "dep_rules", "expected"),
    [
        pytest.param([], [], RateSettings(), id="no-limit"),
        pytest.param(
            [],
            [rule({"rate": {"deployment": {"requests_per_second": 2.5}}})],
            RateSettings(deployment=TokenBucket(2.5, 3), sources=(DEPLOYMENT,)),
            id="burst-defaults-to-rps-rounded-up",
        ),
        pytest.param(
            [rule({"rate": {"deployment": {"requests_per_second": 100, "burst": 50}}}, M)],
            [
                rule(
                    {
                        "rate": {
                            "deployment": {"requests_per_second": 200, "burst": 20},
                            "principal": {"requests_per_second": 5},
                        }
                    }
                )
            ],
            RateSettings(
                deployment=TokenBucket(100, 20),
                principal=TokenBucket(5, 5),
                sources=(ENV_MANDATORY, DEPLOYMENT),
            ),
            id="mandatory-and-deployment-the-stricter-wins-per-dimension",
        ),
        pytest.param(
            [rule({"rate": {"deployment": {"requests_per_second": 1}}}, O)],
            [rule({"rate": {"principal": {"requests_per_second": 9, "burst": 1}}})],
            RateSettings(principal=TokenBucket(9, 1), sources=(DEPLOYMENT,)),
            id="optional-env-replaced",
        ),
    ],
)
def test_rate_collision_rule(
    env_rules: list[Any], dep_rules: list[Any], expected: RateSettings
) -> None:
    assert _rate(env_rules, dep_rules) == expected
