"""Table tests of the collision rule for single-valued policies, and the settings they give.

routing, failover and offload hold one value: a mandatory environment policy beats the
deployment's own (which shows up as overridden by it); an optional one is replaced by the
deployment's own; either applies alone when the other side has none.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import pytest

from controlplane.policy import (
    ORIGIN_DEPLOYMENT,
    ORIGIN_ENVIRONMENT,
    effective_policies,
    resolve_deployment,
)
from controlplane.policy.settings import DEFAULT_RETRY_ON
from meshline.v1.resources_pb2 import Policy
from tests.controlplane.policy.world import M, O, dep, env, regions, rule

ENV_MANDATORY = "environment 'production' mandatory"
ENV_OPTIONAL = "environment 'production' optional"
DEPLOYMENT = "deployment 'mnist'"

SINGLE_VALUED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "routing": ({"routing": {"strategy": "least_request"}}, {"routing": {"strategy": "random"}}),
    "failover": ({"failover": {"disabled": True}}, {"failover": {"regions": ["us-east"]}}),
    "offload": (
        {"offload": {"max_inflight_per_replica": 4}},
        {"offload": {"max_inflight_per_replica": 8}},
    ),
}


def _cases() -> list[Any]:
    """(env policies, deployment policies, applied sources, (overridden, by) sources)."""
    cases = []
    for kind, (env_rule, dep_rule) in SINGLE_VALUED.items():
        cases += [
            pytest.param(
                [rule(env_rule, M)],
                [rule(dep_rule)],
                [ENV_MANDATORY],
                [(DEPLOYMENT, ENV_MANDATORY)],
                id=f"{kind}-mandatory-env-beats-deployment",
            ),
            pytest.param(
                [rule(env_rule, O)],
                [rule(dep_rule)],
                [DEPLOYMENT],
                [(ENV_OPTIONAL, DEPLOYMENT)],
                id=f"{kind}-optional-env-replaced-by-deployment",
            ),
            pytest.param(
                [rule(env_rule)],
                [rule(dep_rule)],
                [DEPLOYMENT],
                [(ENV_OPTIONAL, DEPLOYMENT)],
                id=f"{kind}-mode-defaults-to-optional",
            ),
            pytest.param(
                [rule(env_rule, O)], [], [ENV_OPTIONAL], [], id=f"{kind}-optional-env-alone"
            ),
            pytest.param(
                [rule(env_rule, M)], [], [ENV_MANDATORY], [], id=f"{kind}-mandatory-env-alone"
            ),
            pytest.param([], [rule(dep_rule)], [DEPLOYMENT], [], id=f"{kind}-deployment-alone"),
        ]
    return cases


@pytest.mark.parametrize(("env_policies", "dep_policies", "applied", "overridden"), _cases())
def test_single_valued_collision(
    env_policies: list[Policy],
    dep_policies: list[Policy],
    applied: list[str],
    overridden: list[tuple[str, str]],
) -> None:
    used, lost = effective_policies(dep(dep_policies), env(env_policies))
    assert [p.source for p in used] == applied
    assert [(o.policy.source, o.by.source) for o in lost] == overridden
    for o in lost:
        assert o.policy.rule_type == o.by.rule_type
        assert o.by in used  # the winner is the very policy that applies


def test_overridden_by_is_the_mandatory_environment_policy() -> None:
    resolved = resolve_deployment(
        dep([rule({"routing": {"strategy": "random", "timeout_s": 9}})]),
        env([rule({"routing": {"strategy": "least_request", "timeout_s": 5}}, M)]),
        regions(),
    )
    [lost] = resolved.overridden
    assert (lost.policy.origin, lost.by.origin) == (ORIGIN_DEPLOYMENT, ORIGIN_ENVIRONMENT)
    assert lost.by.mandatory and lost.by.policy.routing.strategy == "least_request"
    assert lost.policy.policy.routing.strategy == "random"
    assert lost.describe() == (
        "deployment 'mnist' routing {strategy: random, timeout_s: 9.0} "
        "(overridden by environment 'production' mandatory)"
    )
    assert [p.rule_type for p in resolved.applied] == ["routing"]


def test_types_collide_only_with_their_own_type() -> None:
    used, lost = effective_policies(
        dep([rule({"routing": {"strategy": "random"}}), rule({"offload": {"max_percent": 10}})]),
        env(
            [
                rule({"failover": {"disabled": True}}, M),
                rule({"routing": {"strategy": "least_request"}}, O),
                rule({"location": {"continents": ["EU"]}}, M),
            ]
        ),
    )
    assert [(p.rule_type, p.source) for p in used] == [
        ("failover", ENV_MANDATORY),
        ("location", ENV_MANDATORY),
        ("routing", DEPLOYMENT),
        ("offload", DEPLOYMENT),
    ]
    assert [(o.policy.rule_type, o.by.source) for o in lost] == [("routing", DEPLOYMENT)]


SETTINGS = [
    pytest.param(
        [],
        [],
        {
            "routing.strategy": "round_robin",
            "routing.timeout_s": 30.0,
            "routing.hash_header": "",
            "routing.region_preference": "nearest",
            "routing.retry.num_retries": 3,
            "routing.retry.retry_on": DEFAULT_RETRY_ON,
            "routing.retry.budget_percent": 0.0,
            "failover.enabled": True,
            "failover.regions": (),
            "failover.health_check.interval_s": 1.0,
            "failover.outlier.consecutive_5xx": 5,
            "offload.enabled": False,
            "offload.max_inflight_per_replica": 0,
            "offload.max_percent": 50,
        },
        id="no-policies-defaults",
    ),
    pytest.param(
        [rule({"routing": {"strategy": "least_request", "timeout_s": 5}}, M)],
        [rule({"routing": {"strategy": "random", "timeout_s": 9}})],
        {"routing.strategy": "least_request", "routing.timeout_s": 5.0},
        id="routing-mandatory-env-values",
    ),
    pytest.param(
        [rule({"routing": {"strategy": "least_request", "timeout_s": 5}}, O)],
        [rule({"routing": {"strategy": "random", "timeout_s": 9}})],
        {"routing.strategy": "random", "routing.timeout_s": 9.0},
        id="routing-optional-env-replaced",
    ),
    pytest.param(
        [rule({"routing": {"retries": {"attempts": 7, "budget_percent": 25}}}, M)],
        [rule({"routing": {"retries": {"attempts": 1}}})],
        {"routing.retry.num_retries": 7, "routing.retry.budget_percent": 25.0},
        id="retries-come-whole-from-the-winner",
    ),
    pytest.param(
        [],
        [
            rule(
                {
                    "routing": {
                        "timeout_s": 12,
                        "retries": {
                            "attempts": 5,
                            "per_try_timeout_s": 2,
                            "retry_on": ["5xx", "reset"],
                            "budget_percent": 20,
                            "min_retry_concurrency": 2,
                        },
                    }
                }
            )
        ],
        {
            "routing.timeout_s": 12.0,
            "routing.retry.num_retries": 5,
            "routing.retry.per_try_timeout_s": 2.0,
            "routing.retry.retry_on": ("5xx", "reset"),
            "routing.retry.budget_percent": 20.0,
            "routing.retry.min_retry_concurrency": 2,
        },
        id="retries-every-field",
    ),
    pytest.param(
        [],
        [rule({"routing": {"retries": {"attempts": 0, "budget_percent": 10}}})],
        {"routing.retry.num_retries": 3, "routing.retry.retry_on": DEFAULT_RETRY_ON},
        id="retries-zero-attempts-means-default",
    ),
    pytest.param(
        [rule({"routing": {"retries": {"disabled": True}}}, M)],
        [rule({"routing": {"retries": {"attempts": 5}}})],
        {"routing.retry.num_retries": 0, "routing.retry.retry_on": ()},
        id="retries-disabled-by-mandatory-env",
    ),
    pytest.param(
        [],
        [rule({"routing": {"strategy": "ring_hash", "hash_header": "X-User"}})],
        {"routing.strategy": "ring_hash", "routing.hash_header": "x-user"},
        id="ring-hash-header-lowercased",
    ),
    pytest.param(
        [rule({"routing": {"region_preference": "ordered", "region_order": ["us-east"]}}, O)],
        [],
        {"routing.region_preference": "ordered", "routing.region_order": ("us-east",)},
        id="routing-optional-env-alone",
    ),
    pytest.param(
        [rule({"failover": {"disabled": True}}, M)],
        [rule({"failover": {"regions": ["us-east"]}})],
        {"failover.enabled": False, "failover.regions": ()},
        id="failover-mandatory-env-disables",
    ),
    pytest.param(
        [rule({"failover": {"disabled": True}}, O)],
        [rule({"failover": {"regions": ["us-east", "eu-west"]}})],
        {"failover.enabled": True, "failover.regions": ("us-east", "eu-west")},
        id="failover-optional-env-replaced",
    ),
    pytest.param(
        [],
        [rule({"failover": {"health_check": {"interval_s": 3}, "outlier": {"interval_s": 4}}})],
        {
            "failover.health_check.interval_s": 3.0,
            "failover.health_check.timeout_s": 2.0,
            "failover.health_check.unhealthy_threshold": 3,
            "failover.outlier.interval_s": 4.0,
            "failover.outlier.max_ejection_percent": 50,
        },
        id="failover-tuning-defaults-the-rest",
    ),
    pytest.param(
        [rule({"offload": {"max_inflight_per_replica": 4}}, M)],
        [rule({"offload": {"max_inflight_per_replica": 8, "max_percent": 30}})],
        {
            "offload.enabled": True,
            "offload.max_inflight_per_replica": 4,
            "offload.max_percent": 50,
        },
        id="offload-mandatory-env-wins-whole",
    ),
    pytest.param(
        [rule({"offload": {"max_inflight_per_replica": 4}}, O)],
        [rule({"offload": {"max_inflight_per_replica": 8, "max_percent": 30}})],
        {"offload.max_inflight_per_replica": 8, "offload.max_percent": 30},
        id="offload-optional-env-replaced",
    ),
    pytest.param(
        [],
        [rule({"offload": {"max_inflight_per_replica": 2, "regions": ["us-west", "eu-west"]}})],
        {"offload.max_percent": 50, "offload.regions": ("us-west", "eu-west")},
        id="offload-regions-and-default-percent",
    ),
]


@pytest.mark.parametrize(("env_policies", "dep_policies", "expected"), SETTINGS)
def test_resolved_settings(
    env_policies: list[Policy], dep_policies: list[Policy], expected: dict[str, object]
) -> None:
    resolved = resolve_deployment(dep(dep_policies), env(env_policies), regions())
    assert {path: attrgetter(path)(resolved) for path in expected} == expected


def test_resolved_deployment_identity() -> None:
    resolved = resolve_deployment(dep(replicas=3, version="v2"), env(), regions())
    assert (resolved.name, resolved.environment, resolved.model) == (
        "mnist",
        "production",
        "mnist",
    )
    assert (resolved.version, resolved.replicas, resolved.key) == (
        "v2",
        3,
        ("production", "mnist"),
    )
