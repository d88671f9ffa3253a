"""Apply-time checks of the policy types and region facts: each bad field with its exact line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.api import plan_apply
from controlplane.store import Store
from meshline.v1.api_pb2 import Resource
from tests.controlplane.api.policy_world import dep as _dep
from tests.controlplane.api.policy_world import env as _env
from tests.controlplane.api.policy_world import errors_of, world
from tests.controlplane.api.policy_world import split as _split
from tests.controlplane.store.builders import environment, policy, region


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with world(tmp_path) as s:
        yield s


def _routing(**fields: Any) -> dict[str, Any]:
    return {"routing": fields}


D = "deployment 'd': spec.policies[0]"
E = "environment 'staging': spec.policies[0]"
KNOWN = "(registered: apac, eu, us)"
CONTINENTS = "(AF, AN, AS, EU, NA, OC, SA)"

BAD_POLICIES = [
    # flavor
    pytest.param(
        _dep({"flavor": {"cpu": ["c5"], "gpu": ["a100"]}}),
        f"{D}.flavor: lists CPU flavors and GPU flavors: a deployment runs on one or the "
        "other; use two deployments for both",
        id="flavor-cpu-and-gpu",
    ),
    pytest.param(
        _env({"flavor": {"cpu": ["c5"], "gpu": ["a100"]}}),
        f"{E}.flavor: lists CPU flavors and GPU flavors: a deployment runs on one or the "
        "other; use two deployments for both",
        id="env-flavor-cpu-and-gpu",
    ),
    pytest.param(
        _dep({"flavor": {}}),
        f"{D}.flavor: a flavor policy lists cpu or gpu flavors",
        id="flavor-empty",
    ),
    pytest.param(
        _dep({"flavor": {"gpu": ["a 100"]}}),
        f"{D}.flavor.gpu[0]: 'a 100' is not a flavor name (letters, digits, '.', '_', '-')",
        id="flavor-bad-name",
    ),
    # location
    pytest.param(
        _dep({"location": {"continents": ["Europe"]}}),
        f"{D}.location.continents[0]: 'Europe' is not a continent code {CONTINENTS}",
        id="location-bad-continent",
    ),
    pytest.param(
        _env({"location": {"deny": {"continents": ["XX"]}}}),
        f"{E}.location.deny.continents[0]: 'XX' is not a continent code {CONTINENTS}",
        id="location-deny-bad-continent",
    ),
    pytest.param(
        _dep({"location": {"deny": {"countries": ["USA"]}}}),
        f"{D}.location.deny.countries[0]: 'USA' is not an ISO 3166-1 alpha-2 country code such "
        "as DE",
        id="location-deny-bad-country",
    ),
    pytest.param(
        _dep({"location": {"regions": ["eu"], "deny": {"regions": ["eu", "mars"]}}}),
        f"{D}.location.deny.regions[1]: unknown region 'mars' {KNOWN}",
        id="location-deny-unknown-region",
    ),
    pytest.param(
        _env({"location": {"regions": ["mars"]}}),
        f"{E}.location.regions[0]: unknown region 'mars' {KNOWN}",
        id="env-location-unknown-region",
    ),
    # routing
    pytest.param(
        _dep(_routing(strategy="fastest")),
        f"{D}.routing.strategy: unknown strategy 'fastest' (expected one of round_robin, "
        "least_request, random, ring_hash)",
        id="routing-unknown-strategy",
    ),
    pytest.param(
        _dep(_routing(strategy="ring_hash")),
        f"{D}.routing.hash_header: ring_hash needs hash_header: the header to hash on",
        id="ring-hash-without-header",
    ),
    pytest.param(
        _dep(_routing(strategy="least_request", hash_header="x-user")),
        f"{D}.routing.hash_header: hash_header applies only to strategy ring_hash",
        id="header-without-ring-hash",
    ),
    pytest.param(
        _env(_routing(hash_header="x-user")),
        f"{E}.routing.hash_header: hash_header applies only to strategy ring_hash",
        id="header-with-default-strategy",
    ),
    pytest.param(
        _dep(_routing(strategy="ring_hash", hash_header="x user")),
        f"{D}.routing.hash_header: 'x user' is not a valid header name",
        id="bad-header-name",
    ),
    pytest.param(
        _dep(_routing(retries={"retry_on": ["reset", "sometimes"]})),
        f"{D}.routing.retries.retry_on[1]: unknown retry condition 'sometimes' (expected one of "
        "5xx, cancelled, connect-failure, deadline-exceeded, envoy-ratelimited, gateway-error, "
        "http3-post-connect-failure, internal, refused-stream, reset, reset-before-request, "
        "resource-exhausted, retriable-4xx, retriable-status-codes, unavailable)",
        id="unknown-retry-condition",
    ),
    pytest.param(
        _dep(_routing(timeout_s=5, retries={"per_try_timeout_s": 10})),
        f"{D}.routing.retries.per_try_timeout_s: 10.0 s is longer than the request timeout 5.0 s",
        id="per-try-longer-than-timeout",
    ),
    pytest.param(
        _dep(_routing(retries={"per_try_timeout_s": 45})),
        f"{D}.routing.retries.per_try_timeout_s: 45.0 s is longer than the request timeout "
        "30.0 s (the default)",
        id="per-try-longer-than-default-timeout",
    ),
    pytest.param(
        _dep(_routing(retries={"per_try_timeout_s": -1})),
        f"{D}.routing.retries.per_try_timeout_s: must be 0 (none: only the request timeout) "
        "or between 0.001 and 86400 seconds, got -1",
        id="per-try-negative",
    ),
    pytest.param(
        _dep(_routing(timeout_s=-1)),
        f"{D}.routing.timeout_s: must be 0 (the default, 30 s) or between 0.001 and 86400 "
        "seconds, got -1",
        id="timeout-negative",
    ),
    pytest.param(
        _dep(_routing(retries={"attempts": 11})),
        f"{D}.routing.retries.attempts: must be between 0 (the default, 3) and 10, got 11",
        id="too-many-attempts",
    ),
    pytest.param(
        _dep(_routing(retries={"budget_percent": 150})),
        f"{D}.routing.retries.budget_percent: must be between 0 (no budget) and 100 percent, "
        "got 150",
        id="budget-over-100",
    ),
    pytest.param(
        _dep(_routing(retries={"min_retry_concurrency": -1})),
        f"{D}.routing.retries.min_retry_concurrency: must be between 0 and 10000, got -1",
        id="min-retry-concurrency-negative",
    ),
    pytest.param(
        _dep(_routing(region_order=["eu"])),
        f"{D}.routing.region_order: region_order needs region_preference: ordered",
        id="region-order-without-ordered",
    ),
    pytest.param(
        _dep(_routing(region_preference="ordered")),
        f"{D}.routing.region_order: region_preference ordered needs a region_order",
        id="ordered-without-region-order",
    ),
    pytest.param(
        _dep(_routing(region_preference="closest")),
        f"{D}.routing.region_preference: unknown preference 'closest' (expected one of "
        "nearest, ordered)",
        id="unknown-preference",
    ),
    pytest.param(
        _env(_routing(region_preference="ordered", region_order=["us", "mars"])),
        f"{E}.routing.region_order[1]: unknown region 'mars' {KNOWN}",
        id="region-order-unknown-region",
    ),
    # failover
    pytest.param(
        _dep({"failover": {"regions": ["mars"]}}),
        f"{D}.failover.regions[0]: unknown region 'mars' {KNOWN}",
        id="failover-unknown-region",
    ),
    pytest.param(
        _env({"failover": {"disabled": True, "regions": ["us"]}}),
        f"{E}.failover.regions: failover is disabled: it takes no regions",
        id="failover-disabled-with-regions",
    ),
    pytest.param(
        _dep({"failover": {"outlier": {"max_ejection_percent": 101}}}),
        f"{D}.failover.outlier.max_ejection_percent: must be 0 (the default, 50) or between 1 "
        "and 100 percent, got 101",
        id="failover-ejection-over-100",
    ),
    pytest.param(
        _dep({"failover": {"health_check": {"timeout_s": -1}}}),
        f"{D}.failover.health_check.timeout_s: must be 0 (the default, 2 s) or between 0.001 "
        "and 3600 seconds, got -1",
        id="failover-health-check-negative",
    ),
    # offload
    pytest.param(
        _dep({"offload": {"max_percent": 30}}),
        f"{D}.offload.max_inflight_per_replica: must be between 1 and 10000 requests in "
        "flight per replica, got 0",
        id="offload-without-threshold",
    ),
    pytest.param(
        _env({"offload": {"max_inflight_per_replica": 4, "regions": ["mars"]}}),
        f"{E}.offload.regions[0]: unknown region 'mars' {KNOWN}",
        id="offload-unknown-region",
    ),
    pytest.param(
        _dep({"offload": {"max_inflight_per_replica": 4, "max_percent": 101}}),
        f"{D}.offload.max_percent: must be 0 (the default, 50) or between 1 and 100 percent, "
        "got 101",
        id="offload-percent-over-100",
    ),
    # traffic
    pytest.param(
        _dep({"traffic": {"split": _split(v1=90, v2=20)}}),
        f"{D}.traffic.split: weights add up to 110, not 100",
        id="split-weights-over-100",
    ),
    pytest.param(
        _dep({"traffic": {"split": _split(v1=50, v2=10)}}),
        f"{D}.traffic.split: weights add up to 60, not 100",
        id="split-weights-under-100",
    ),
    pytest.param(
        _dep({"traffic": {"split": _split(v1=90, v9=10)}}),
        f"{D}.traffic.split[1].version: model 'mnist' has no version 'v9' (versions: v1, v2, v3)",
        id="split-unknown-version",
    ),
    pytest.param(
        _dep({"traffic": {"split": _split(v2=60, v3=40)}}),
        f"{D}.traffic.split: the split does not include the deployment's own version 'v1' "
        "(spec.version); give it a weight, 0 is allowed",
        id="split-without-own-version",
    ),
    pytest.param(
        _dep({"traffic": {"split": [*_split(v1=50), *_split(v1=50)]}}),
        f"{D}.traffic.split[1].version: version 'v1' is split twice",
        id="split-version-twice",
    ),
    pytest.param(
        _dep({"traffic": {"split": _split(v1=110, v2=-10)}}),
        [
            f"{D}.traffic.split[0].weight: must be between 0 and 100 percent, got 110",
            f"{D}.traffic.split[1].weight: must be between 0 and 100 percent, got -10",
        ],
        id="split-weights-out-of-range",
    ),
    pytest.param(
        _dep({"traffic": {"mirror": {"version": "v2", "percent": 10}}}, version="v2"),
        f"{D}.traffic.mirror.version: mirrors the deployment's own version 'v2' to itself",
        id="mirror-own-version",
    ),
    pytest.param(
        _dep(
            {"traffic": {"split": _split(v1=90, v2=10), "mirror": {"version": "v2", "percent": 5}}}
        ),
        f"{D}.traffic.mirror.version: version 'v2' already gets a share of the split: mirroring "
        "it too would run some requests on it twice",
        id="mirror-a-weighted-leg",
    ),
    pytest.param(
        _dep({"traffic": {"mirror": {"version": "v9", "percent": 10}}}),
        f"{D}.traffic.mirror.version: model 'mnist' has no version 'v9' (versions: v1, v2, v3)",
        id="mirror-unknown-version",
    ),
    pytest.param(
        _dep({"traffic": {"mirror": {"version": "v2"}}}),
        f"{D}.traffic.mirror.percent: must be between 0.0001 and 100 percent, got 0",
        id="mirror-without-percent",
    ),
    pytest.param(
        _dep({"traffic": {}}),
        f"{D}.traffic: a traffic policy sets a split, a mirror, or both",
        id="traffic-empty",
    ),
    pytest.param(
        environment(
            "staging",
            [policy({"traffic": {"split": _split(v1=100)}}, "mandatory")],
        ),
        f"{E}.traffic: a traffic policy names model versions: set it on a deployment",
        id="traffic-on-environment",
    ),
    # region facts
    pytest.param(
        region("apac2", "SG", "Asia"),
        f"region 'apac2': spec.continent: 'Asia' is not a continent code {CONTINENTS}",
        id="region-bad-continent",
    ),
    pytest.param(
        region("apac2", "SG", "AS", max_replicas=-1),
        "region 'apac2': spec.max_replicas: must be between 0 (unlimited) and 100000, got -1",
        id="region-negative-capacity",
    ),
    pytest.param(
        region("apac2", "SG", "AS", gpu=["h100", "h 100"]),
        "region 'apac2': spec.flavors.gpu[1]: 'h 100' is not a flavor name (letters, digits, "
        "'.', '_', '-')",
        id="region-bad-flavor-name",
    ),
    pytest.param(
        region("apac2", "SG", "AS", memory_budget="12GB"),
        "region 'apac2': spec.memory_budget: '12GB' is not an amount of memory: write a number "
        "with an optional unit (Ki, Mi, Gi, Ti, or k, M, G, T), e.g. 12Gi or 800Mi, or a share "
        "of the machine's memory such as 60%",
        id="region-bad-memory-budget",
    ),
    pytest.param(
        region("apac2", "SG", "AS", memory_budget="120%"),
        "region 'apac2': spec.memory_budget: a share of the machine's memory is above 0% and at "
        "most 100%, got 120%",
        id="region-memory-budget-over-the-machine",
    ),
]


@pytest.mark.parametrize(("doc", "lines"), BAD_POLICIES)
def test_bad_policies(store: Store, doc: Resource, lines: str | list[str]) -> None:
    expected = [lines] if isinstance(lines, str) else lines
    errors = errors_of(store, [region("apac", "JP", "AS"), doc])
    assert [(e.document_index, str(e)) for e in errors] == [(1, line) for line in expected]
    assert [e.field_path for e in errors] == [line.split(": ")[1] for line in expected]


def test_two_policies_of_one_type_on_an_environment(store: Store) -> None:
    [error] = errors_of(
        store, [_env(_routing(strategy="random"), {"location": {}}, _routing(strategy="random"))]
    )
    assert str(error) == (
        "environment 'staging': spec.policies[2].routing: a second routing policy "
        "(first at spec.policies[0]); put it into one policy"
    )


GOOD = [
    pytest.param(region("apac", "JP", "AS", cpu=["c5"], gpu=["h100"]), id="region-cpu-and-gpu"),
    pytest.param(region("apac", "JP", "as", max_replicas=0), id="region-continent-any-case"),
    pytest.param(
        _env({"location": {"continents": ["eu"], "deny": {"regions": ["us"]}}}), id="deny"
    ),
    pytest.param(_dep(_routing(retries={"per_try_timeout_s": 30})), id="per-try-equal-to-default"),
    pytest.param(
        _dep(
            _routing(
                strategy="ring_hash",
                hash_header="X-User",
                region_preference="ordered",
                region_order=["us"],
            )
        ),
        id="ring-hash-ordered",
    ),
    pytest.param(
        _dep(
            {
                "traffic": {
                    "split": _split(v1=0, v2=100),
                    "mirror": {"version": "v3", "percent": 100},
                }
            }
        ),
        id="split-own-zero-mirror-another",
    ),
    pytest.param(_dep({"failover": {"disabled": True}}), id="failover-disabled"),
    pytest.param(_dep({"offload": {"max_inflight_per_replica": 1}}), id="offload-threshold-only"),
]


@pytest.mark.parametrize("doc", GOOD)
def test_good_policies(store: Store, doc: Resource) -> None:
    plan_apply([doc], store.snapshot())
