"""One YAML document per bounded field, holding a given value there and nothing else odd.

Each probe sets what its field needs to mean something (batching on for a batching delay, a
request timeout of a day for a per-try timeout, a second leg for a split weight), so that any
value inside the field's bound gives a document that applies, and any value outside gives an
error naming exactly `path`. Used by the bound tests with the world of policy_world.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from controlplane.api.bounds import BOUNDS, Bound
from meshline.v1 import resources_pb2

Doc = dict[str, Any]


@dataclass(frozen=True)
class Probe:
    path: str  # the field path an error names
    document: Callable[[str, float], Doc]  # (document name, value) -> YAML document


def _deployment(name: str, spec: Doc) -> Doc:
    base: Doc = {"environment": "production", "model": "mnist", "version": "v1", "replicas": 1}
    return {"kind": "Deployment", "metadata": {"name": name}, "spec": {**base, **spec}}


def _spec(path: str, make: Callable[[float], Doc]) -> Probe:
    """A deployment whose spec gets `make(value)` merged in."""
    return Probe(f"spec.{path}", lambda name, value: _deployment(name, make(value)))


def _policy(path: str, make: Callable[[float], Doc]) -> Probe:
    """A deployment with one policy, `make(value)`."""
    return Probe(
        f"spec.policies[0].{path}",
        lambda name, value: _deployment(name, {"policies": [make(value)]}),
    )


def _batching(field: str, **context: Any) -> Probe:
    return _spec(
        f"batching.{field}", lambda v: {"batching": {"max_batch_size": 8, **context, field: v}}
    )


def _scaling(field: str, **context: Any) -> Probe:
    return _spec(
        f"scaling.{field}",
        lambda v: {"replicas": 0, "scaling": {"max_replicas": 2, **context, field: v}},
    )


def _analysis(field: str) -> Probe:
    return _spec(
        f"rollout.analysis.{field}",
        lambda v: {"rollout": {"strategy": "canary", "analysis": {field: v}}},
    )


def _health_check(field: str) -> Probe:
    return _policy(
        f"failover.health_check.{field}", lambda v: {"failover": {"health_check": {field: v}}}
    )


def _outlier(field: str) -> Probe:
    return _policy(f"failover.outlier.{field}", lambda v: {"failover": {"outlier": {field: v}}})


def _split(weight: float) -> Doc:
    """The probed leg, and the deployment's own version with the rest (0 when there is none)."""
    rest = 100 - weight if 0 <= weight <= 100 else 0
    legs = [{"version": "v2", "weight": weight}, {"version": "v1", "weight": rest}]
    return {"traffic": {"split": legs}}


def probes(artifact: Path) -> dict[tuple[str, str], Probe]:
    """A probe for every entry of BOUNDS; `artifact` is a file the model probe points at."""

    def shape(name: str, value: float) -> Doc:
        tensor = {"name": "x", "datatype": "FP32", "shape": [-1, value]}
        version = {
            "name": "v1",
            "runtime": "torch",
            "path": str(artifact),
            "signature": {"inputs": [tensor], "outputs": [{**tensor, "name": "y"}]},
        }
        return {"kind": "Model", "metadata": {"name": name}, "spec": {"versions": [version]}}

    def region(name: str, value: float) -> Doc:
        spec = {"country": "DE", "continent": "EU", "max_replicas": value}
        return {"kind": "Region", "metadata": {"name": name}, "spec": spec}

    return {
        ("TensorSpec", "shape"): Probe("spec.versions[0].signature.inputs[0].shape[1]", shape),
        ("DeploymentSpec", "replicas"): _spec("replicas", lambda v: {"replicas": v}),
        ("DeploymentSpec", "instances"): _spec("instances", lambda v: {"instances": v}),
        ("BatchingSpec", "max_batch_size"): _spec(
            "batching.max_batch_size", lambda v: {"batching": {"max_batch_size": v}}
        ),
        ("BatchingSpec", "max_delay_ms"): _batching("max_delay_ms"),
        ("BatchingSpec", "preferred_batch_sizes"): _spec(
            "batching.preferred_batch_sizes[0]",
            lambda v: {"batching": {"max_batch_size": 4096, "preferred_batch_sizes": [v]}},
        ),
        ("BatchingSpec", "priority_levels"): _batching("priority_levels"),
        ("BatchingSpec", "default_priority_level"): _batching(
            "default_priority_level", priority_levels=100
        ),
        ("ScalingSpec", "min_replicas"): _scaling("min_replicas", max_replicas=64),
        ("ScalingSpec", "max_replicas"): _spec(
            "scaling.max_replicas", lambda v: {"replicas": 0, "scaling": {"max_replicas": v}}
        ),
        ("ScalingSpec", "initial_replicas"): _scaling("initial_replicas", max_replicas=64),
        ("ScalingSpec", "target_concurrency"): _scaling("target_concurrency"),
        ("ScalingSpec", "scale_to_zero_after"): _scaling("scale_to_zero_after"),
        ("ScalingSpec", "cold_start_timeout"): _scaling("cold_start_timeout"),
        ("ScalingSpec", "stable_window"): _scaling("stable_window"),
        ("ScalingSpec", "panic_window"): _scaling("panic_window", stable_window=3600),
        ("CanaryStep", "weight"): _spec(
            "rollout.steps[0].weight",
            lambda v: {"rollout": {"strategy": "canary", "steps": [{"weight": v, "duration": 60}]}},
        ),
        ("CanaryStep", "duration"): _spec(
            "rollout.steps[0].duration",
            lambda v: {"rollout": {"strategy": "canary", "steps": [{"weight": 50, "duration": v}]}},
        ),
        ("RolloutAnalysis", "max_error_rate_increase"): _analysis("max_error_rate_increase"),
        ("RolloutAnalysis", "max_latency_ratio"): _analysis("max_latency_ratio"),
        ("RolloutAnalysis", "min_requests"): _analysis("min_requests"),
        ("RoutingPolicy", "timeout_s"): _policy(
            "routing.timeout_s", lambda v: {"routing": {"timeout_s": v}}
        ),
        ("RetryPolicy", "attempts"): _policy(
            "routing.retries.attempts", lambda v: {"routing": {"retries": {"attempts": v}}}
        ),
        ("RetryPolicy", "per_try_timeout_s"): _policy(
            "routing.retries.per_try_timeout_s",
            lambda v: {"routing": {"timeout_s": 86400, "retries": {"per_try_timeout_s": v}}},
        ),
        ("RetryPolicy", "budget_percent"): _policy(
            "routing.retries.budget_percent",
            lambda v: {"routing": {"retries": {"budget_percent": v, "min_retry_concurrency": 3}}},
        ),
        ("RetryPolicy", "min_retry_concurrency"): _policy(
            "routing.retries.min_retry_concurrency",
            lambda v: {"routing": {"retries": {"budget_percent": 20, "min_retry_concurrency": v}}},
        ),
        ("HealthCheckPolicy", "interval_s"): _health_check("interval_s"),
        ("HealthCheckPolicy", "timeout_s"): _health_check("timeout_s"),
        ("HealthCheckPolicy", "unhealthy_threshold"): _health_check("unhealthy_threshold"),
        ("HealthCheckPolicy", "healthy_threshold"): _health_check("healthy_threshold"),
        ("OutlierPolicy", "consecutive_5xx"): _outlier("consecutive_5xx"),
        ("OutlierPolicy", "consecutive_gateway_failure"): _outlier("consecutive_gateway_failure"),
        ("OutlierPolicy", "base_ejection_time_s"): _outlier("base_ejection_time_s"),
        ("OutlierPolicy", "max_ejection_percent"): _outlier("max_ejection_percent"),
        ("OutlierPolicy", "interval_s"): _outlier("interval_s"),
        ("OffloadPolicy", "max_inflight_per_replica"): _policy(
            "offload.max_inflight_per_replica",
            lambda v: {"offload": {"max_inflight_per_replica": v}},
        ),
        ("OffloadPolicy", "max_percent"): _policy(
            "offload.max_percent",
            lambda v: {"offload": {"max_inflight_per_replica": 4, "max_percent": v}},
        ),
        # The probed leg first: a document's first bad field is the one a parse error names.
        ("VersionWeight", "weight"): _policy("traffic.split[0].weight", _split),
        ("MirrorPolicy", "percent"): _policy(
            "traffic.mirror.percent",
            lambda v: {"traffic": {"mirror": {"version": "v2", "percent": v}}},
        ),
        ("Firewall", "trusted_hops"): _policy(
            "access.firewall.trusted_hops",
            lambda v: {"access": {"firewall": {"trusted_hops": v}}},
        ),
        ("RateLimit", "requests_per_second"): _policy(
            "rate.deployment.requests_per_second",
            lambda v: {"rate": {"deployment": {"requests_per_second": v}}},
        ),
        ("RateLimit", "burst"): _policy(
            "rate.principal.burst",
            lambda v: {"rate": {"principal": {"requests_per_second": 10, "burst": v}}},
        ),
        ("RegionSpec", "max_replicas"): Probe("spec.max_replicas", region),
    }


# Fields that hold one value across the whole mesh (every firewall uses the same hop count):
# two probes with different in-range values in one apply would refuse each other.
ONE_PER_MESH: frozenset[tuple[str, str]] = frozenset({("Firewall", "trusted_hops")})


def one_per_mesh_rounds(
    values: list[tuple[tuple[str, str], float]],
) -> list[list[tuple[tuple[str, str], float]]]:
    """`values` in applies that each hold at most one in-range value of a ONE_PER_MESH field:
    the first round everything else, then one round per further such value."""
    first: list[tuple[tuple[str, str], float]] = []
    later: list[list[tuple[tuple[str, str], float]]] = []
    taken: set[tuple[str, str]] = set()
    for key, value in values:
        if key in ONE_PER_MESH and inside(BOUNDS[key], value):
            if key in taken:
                later.append([(key, value)])
                continue
            taken.add(key)
        first.append((key, value))
    return [first, *later]


def is_integer_field(key: tuple[str, str]) -> bool:
    message, field = key
    descriptor = resources_pb2.DESCRIPTOR.message_types_by_name[message].fields_by_name[field]
    return descriptor.type not in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)


def inside(bound: Bound, value: float) -> bool:
    """The declared range, spelled out independently of Bound.allows."""
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if value in {special for special, _ in bound.special}:
        return True
    above = bound.low < value if bound.low_open else bound.low <= value
    return above and value <= bound.high


def edges(key: tuple[str, str]) -> list[float]:
    """Values at, just inside and just outside every edge of a field's bound, and the values
    that broke Envoy or the control plane before bounds existed (NaN, 1e11 s, int overflow)."""
    bound = BOUNDS[key]
    points = [bound.low, bound.high, *(special for special, _ in bound.special)]
    if is_integer_field(key):
        out = {int(p) + d for p in points for d in (-1, 0, 1)}
        out |= {-(2**31), 2**31 - 1, 2**31, -(2**31) - 1, 2**63}
        return sorted(out)
    values = {float(p) for p in points}
    for p in points:
        values |= {math.nextafter(p, -math.inf), math.nextafter(p, math.inf), p - 0.5, p + 0.5}
    values |= {1e11, -1e11, 1e300}
    return [*sorted(values), math.nan, math.inf, -math.inf]
