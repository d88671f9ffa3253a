"""Every number a user writes has a declared range, checked at apply with the field named.

One bad value used to reach every Envoy: `failover: {health_check: {timeout_s: 100000000000}}`
was applied, and each region's Envoy NACKed its whole CDS update ("Duration out-of-range").
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from controlplane.api import plan_apply
from controlplane.api.bounds import BOUNDS, NUMERIC_TYPES, SERVER_SET, Bound
from controlplane.store import Store
from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import DeploymentSpec, EnvironmentSpec, ModelSpec, RegionSpec
from tests.controlplane.api.bound_probes import probes
from tests.controlplane.api.policy_world import dep, errors_of, world
from tests.controlplane.store.builders import environment, policy, region

D = "deployment 'd': spec.policies[0]"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with world(tmp_path) as s:
        yield s


def _numeric_fields(descriptor: Descriptor, seen: set[str]) -> set[tuple[str, str]]:
    if descriptor.full_name in seen:
        return set()
    seen.add(descriptor.full_name)
    out: set[tuple[str, str]] = set()
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            out |= _numeric_fields(field.message_type, seen)
        elif field.type in NUMERIC_TYPES:
            out.add((descriptor.name, field.name))
    return out


def test_every_numeric_field_of_every_kind_has_a_bound() -> None:
    """A new number in a spec without a bound fails here, not in every Envoy."""
    seen: set[str] = set()
    fields: set[tuple[str, str]] = set()
    for spec in (ModelSpec, EnvironmentSpec, DeploymentSpec, RegionSpec):
        fields |= _numeric_fields(spec.DESCRIPTOR, seen)
    assert fields - SERVER_SET - set(BOUNDS) == set(), "numeric fields without a bound"
    assert set(BOUNDS) - fields == set(), "bounds of fields that do not exist"


def test_every_bound_has_a_probe_for_the_envoy_tests(tmp_path: Path) -> None:
    assert set(probes(tmp_path)) == set(BOUNDS)


BOUND_TEXT = [
    (Bound(0, 64), 65, "must be between 0 and 64, got 65"),
    (
        Bound(0.001, 86400, "seconds", ((0, "the default, 30 s"),)),
        1e11,
        "must be 0 (the default, 30 s) or between 0.001 and 86400 seconds, got 100000000000",
    ),
    (
        Bound(0, 16, "", ((0, "the default, 1"),)),
        -1,
        "must be between 0 (the default, 1) and 16, got -1",
    ),
    (
        Bound(0, 86400, "seconds", low_open=True),
        0,
        "must be above 0 and at most 86400 seconds, got 0",
    ),
    (Bound(0, 100, "percent"), math.nan, "must be between 0 and 100 percent, got nan"),
    (Bound(0, 100, "percent"), -math.inf, "must be between 0 and 100 percent, got -inf"),
    (Bound(0, 100, "percent"), 100.5, "must be between 0 and 100 percent, got 100.5"),
    (
        Bound(1, 10, "", ((-1, "any size"),)),
        2**63,
        "must be -1 (any size) or between 1 and 10, got 9223372036854775808",
    ),
    (Bound(1, 10), 10**30, "must be between 1 and 10, got 1000... (31 digits)"),
]


@pytest.mark.parametrize(("bound", "value", "message"), BOUND_TEXT)
def test_an_error_says_the_range_and_the_value(bound: Bound, value: float, message: str) -> None:
    assert bound.problem(value) == message


@pytest.mark.parametrize(
    ("bound", "allowed", "refused"),
    [
        (Bound(0, 64), [0, 1, 64], [-1, 65, math.nan]),
        (
            Bound(0.001, 60, "s", ((0, "default"),)),
            [0, 0.001, 60],
            [0.0005, -0.001, 60.001, math.inf],
        ),
        (Bound(0, 10, low_open=True), [1e-9, 10], [0, -1, 10.0000001]),
        (Bound(1, 2**31 - 1, "", ((-1, "any"),)), [-1, 1, 2**31 - 1], [0, -2, 2**31, 10**400]),
    ],
)
def test_edges(bound: Bound, allowed: list[float], refused: list[float]) -> None:
    assert [bound.allows(v) for v in allowed] == [True] * len(allowed)
    assert [bound.allows(v) for v in refused] == [False] * len(refused)


def _apply_errors(store: Store, *docs: Resource) -> list[str]:
    return [str(e) for e in errors_of(store, list(docs))]


# Documents as a gRPC client may send them (NaN and infinity fit a double field; in the proto
# JSON the builders read they are spelled "NaN", "Infinity"), each with the one line its apply
# fails with.
REFUSED = [
    pytest.param(
        dep({"failover": {"health_check": {"timeout_s": 100000000000}}}),
        f"{D}.failover.health_check.timeout_s: must be 0 (the default, 2 s) or between 0.001 "
        "and 3600 seconds, got 100000000000",
        id="issue-health-check-timeout-1e11",
    ),
    pytest.param(
        dep({"failover": {"health_check": {"interval_s": 0.0004}}}),
        f"{D}.failover.health_check.interval_s: must be 0 (the default, 1 s) or between 0.001 "
        "and 3600 seconds, got 0.0004",
        id="duration-below-envoy-millisecond",
    ),
    pytest.param(
        dep({"routing": {"timeout_s": "NaN"}}),
        f"{D}.routing.timeout_s: must be 0 (the default, 30 s) or between 0.001 and 86400 "
        "seconds, got nan",
        id="nan-timeout",
    ),
    pytest.param(
        dep({"routing": {"timeout_s": 86400.5}}),
        f"{D}.routing.timeout_s: must be 0 (the default, 30 s) or between 0.001 and 86400 "
        "seconds, got 86400.5",
        id="timeout-over-a-day",
    ),
    pytest.param(
        dep({"routing": {"timeout_s": 86400, "retries": {"per_try_timeout_s": "Infinity"}}}),
        f"{D}.routing.retries.per_try_timeout_s: must be 0 (none: only the request timeout) or "
        "between 0.001 and 86400 seconds, got inf",
        id="infinite-per-try-timeout",
    ),
    pytest.param(
        dep({"routing": {"retries": {"budget_percent": "NaN"}}}),
        f"{D}.routing.retries.budget_percent: must be between 0 (no budget) and 100 percent, "
        "got nan",
        id="nan-budget",
    ),
    pytest.param(
        dep({"failover": {"outlier": {"base_ejection_time_s": 1e300}}}),
        f"{D}.failover.outlier.base_ejection_time_s: must be 0 (the default, 5 s) or between "
        "0.001 and 86400 seconds, got 1e+300",
        id="ejection-time-huge",
    ),
    pytest.param(
        dep({"failover": {"outlier": {"consecutive_5xx": 2_000_000_000}}}),
        f"{D}.failover.outlier.consecutive_5xx: must be 0 (the default, 5) or between 1 and "
        "1000, got 2000000000",
        id="consecutive-5xx-huge",
    ),
    pytest.param(
        dep({"failover": {"health_check": {"healthy_threshold": -1}}}),
        f"{D}.failover.health_check.healthy_threshold: must be 0 (the default, 1) or between 1 "
        "and 1000, got -1",
        id="negative-threshold",
    ),
    pytest.param(
        dep({"offload": {"max_inflight_per_replica": 20_000}}),
        f"{D}.offload.max_inflight_per_replica: must be between 1 and 10000 requests in flight "
        "per replica, got 20000",
        id="offload-threshold-huge",
    ),
    pytest.param(
        dep({"traffic": {"mirror": {"version": "v2", "percent": 0.00001}}}),
        f"{D}.traffic.mirror.percent: must be between 0.0001 and 100 percent, got 1e-05",
        id="mirror-below-one-per-million",
    ),
    pytest.param(
        dep({"routing": {"retries": {"budget_percent": 20, "min_retry_concurrency": 10_001}}}),
        f"{D}.routing.retries.min_retry_concurrency: must be between 0 and 10000, got 10001",
        id="min-retry-concurrency-huge",
    ),
    pytest.param(
        environment("staging", [policy({"failover": {"outlier": {"interval_s": "-Infinity"}}})]),
        "environment 'staging': spec.policies[0].failover.outlier.interval_s: must be 0 (the "
        "default, 1 s) or between 0.001 and 3600 seconds, got -inf",
        id="environment-policy",
    ),
    pytest.param(
        region("apac", "JP", "AS", max_replicas=100_001),
        "region 'apac': spec.max_replicas: must be between 0 (unlimited) and 100000, got 100001",
        id="region-capacity-huge",
    ),
]


@pytest.mark.parametrize(("doc", "line"), REFUSED)
def test_out_of_range_is_refused_at_apply_naming_the_field(
    store: Store, doc: Resource, line: str
) -> None:
    assert _apply_errors(store, doc) == [line]


def _scaled(**scaling: float) -> Resource:
    doc = dep(replicas=0)
    doc.deployment.spec.scaling.max_replicas = 2
    for name, value in scaling.items():
        setattr(doc.deployment.spec.scaling, name, value)
    return doc


def _rollout(**analysis: float) -> Resource:
    doc = dep()
    doc.deployment.spec.rollout.strategy = "canary"
    for name, value in analysis.items():
        setattr(doc.deployment.spec.rollout.analysis, name, value)
    return doc


@pytest.mark.parametrize(
    ("doc", "line"),
    [
        pytest.param(
            _scaled(target_concurrency=1e-300),
            "deployment 'd': spec.scaling.target_concurrency: must be 0 (the default, 4) or "
            "between 0.01 and 10000 requests in flight per worker, got 1e-300",
            id="target-concurrency-tiny",  # the autoscaler's load / target overflowed
        ),
        pytest.param(
            _scaled(stable_window=math.nan),
            "deployment 'd': spec.scaling.stable_window: must be 0 (the default, 10 s) or "
            "between 0.5 and 3600 seconds, got nan",
            id="nan-window",
        ),
        pytest.param(
            _rollout(max_latency_ratio=math.inf),
            "deployment 'd': spec.rollout.analysis.max_latency_ratio: must be 0 (the default, 2) "
            "or between 1 and 1000, got inf",
            id="infinite-latency-ratio",
        ),
        pytest.param(
            _rollout(min_requests=2_000_000),
            "deployment 'd': spec.rollout.analysis.min_requests: must be between 0 (the default, "
            "20) and 1000000, got 2000000",
            id="min-requests-huge",
        ),
    ],
)
def test_serving_numbers_are_bounded_too(store: Store, doc: Resource, line: str) -> None:
    assert _apply_errors(store, doc) == [line]


def test_relations_are_not_reported_again_for_an_out_of_range_field(store: Store) -> None:
    """A per-try timeout of 1e12 s is out of range; that it is longer than the request
    timeout would only repeat it."""
    doc = dep({"routing": {"retries": {"per_try_timeout_s": 1e12}}})
    assert _apply_errors(store, doc) == [
        f"{D}.routing.retries.per_try_timeout_s: must be 0 (none: only the request timeout) or "
        "between 0.001 and 86400 seconds, got 1000000000000"
    ]


ACCEPTED = [
    pytest.param(
        dep(
            {
                "routing": {
                    "timeout_s": 86400,
                    "retries": {
                        "attempts": 10,
                        "per_try_timeout_s": 86400,
                        "budget_percent": 100,
                        "min_retry_concurrency": 10_000,
                    },
                }
            }
        ),
        id="routing-upper-edges",
    ),
    pytest.param(
        dep(
            {
                "failover": {
                    "health_check": {
                        "interval_s": 0.001,
                        "timeout_s": 0.001,
                        "unhealthy_threshold": 1,
                        "healthy_threshold": 1000,
                    },
                    "outlier": {
                        "consecutive_5xx": 1000,
                        "consecutive_gateway_failure": 1,
                        "base_ejection_time_s": 86400,
                        "max_ejection_percent": 100,
                        "interval_s": 3600,
                    },
                }
            }
        ),
        id="failover-edges",
    ),
    pytest.param(
        dep({"traffic": {"mirror": {"version": "v2", "percent": 0.0001}}}), id="mirror-lowest"
    ),
    pytest.param(region("apac", "JP", "AS", max_replicas=100_000), id="region-largest"),
]


@pytest.mark.parametrize("doc", ACCEPTED)
def test_values_at_the_edges_apply(store: Store, doc: Resource) -> None:
    plan_apply([doc], store.snapshot())


def test_docs_show_every_range() -> None:
    """docs/policies.md lists each field with the range apply enforces."""
    docs = (Path(__file__).parents[3] / "docs" / "policies.md").read_text().splitlines()
    missing = [
        f"{field}: {bound.describe()}"
        for (_, field), bound in BOUNDS.items()
        if not any(field in line and bound.describe() in line for line in docs)
    ]
    assert missing == []
