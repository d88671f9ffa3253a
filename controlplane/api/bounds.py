"""The accepted range of every number a user writes in a document, in one table.

Each bound is at least as tight as what Envoy accepts for the field it ends up in, and usually
a tighter product range (a request timeout of at most a day): one out-of-range value in one
deployment would otherwise make every Envoy NACK its region's whole update. Envoy's rules:
durations become milliseconds in an int64 (at most 9223372035 s) and health-check and outlier
durations must be above 0 (`gt: 0`); Envoy keeps milliseconds, so the smallest positive
duration is 0.001 s (less rounds to 0, refused there or read as "none"); `Percent` and
`max_ejection_percent` are 0..100; counts are uint32. NaN and infinity are never accepted.

Apply checks every numeric field of a document's spec against this table (`check_bounds`);
a numeric field without an entry is a bug that tests/controlplane/api/test_bounds.py catches.
docs/policies.md lists the same ranges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from controlplane.api.errors import DocumentErrors
from meshline.v1.resources_pb2 import ModelVersion

DAY_S = 24 * 3600.0
HOUR_S = 3600.0
# Envoy's durations have millisecond resolution.
MIN_DURATION_S = 0.001
SECONDS = "seconds"
PERCENT = "percent"


@dataclass(frozen=True)
class Bound:
    """low..high (low excluded with `low_open`), plus `special` values that mean something
    else, e.g. `(0, "the default, 30 s")`, accepted even where they lie outside low..high."""

    low: float
    high: float
    unit: str = ""
    special: tuple[tuple[float, str], ...] = ()
    low_open: bool = False

    def allows(self, value: float) -> bool:
        if not finite(value):
            return False
        return any(value == v for v, _ in self.special) or self._in_range(value)

    def describe(self) -> str:
        """E.g. "0 (the default, 30 s) or between 0.001 and 86400 seconds"."""
        unit = f" {self.unit}" if self.unit else ""
        inside = dict(self.special)
        outside = [f"{show(v)} ({what})" for v, what in self.special if not self._in_range(v)]
        if self.low_open:
            text = f"above {show(self.low)} and at most {show(self.high)}{unit}"
        else:
            low = show(self.low)
            if self.low in inside:
                low += f" ({inside[self.low]})"
            text = f"between {low} and {show(self.high)}{unit}"
        return " or ".join([*outside, text])

    def problem(self, value: float) -> str | None:
        """None when `value` is allowed, else the error message."""
        if self.allows(value):
            return None
        return f"must be {self.describe()}, got {show(value)}"

    def _in_range(self, value: float) -> bool:
        return (self.low < value if self.low_open else self.low <= value) and value <= self.high


def finite(value: float) -> bool:
    """Neither NaN nor infinite, nor an int too large to be a float."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def show(value: float) -> str:
    """A number as a user wrote it: 30, not 30.0; 0.001, not 1e-03; no page of digits."""
    if isinstance(value, int):
        text = str(value)
        digits = len(text.lstrip("-"))
        return text if digits <= 20 else f"{text[:4]}... ({digits} digits)"
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _default(text: str) -> tuple[tuple[float, str], ...]:
    return ((0, f"the default, {text}"),)


def _duration(high: float, zero: str) -> Bound:
    """A duration in seconds with Envoy's millisecond resolution; 0 means `zero`."""
    return Bound(MIN_DURATION_S, high, SECONDS, ((0, zero),))


_REPLICAS = Bound(0, 64)

# (message, field) -> its bound. Comments name the Envoy field each value ends up in.
BOUNDS: dict[tuple[str, str], Bound] = {
    # Model: -1 is any size; Triton and Torch take int64 dimensions, far beyond this.
    ("TensorSpec", "shape"): Bound(1, 2**31 - 1, "", ((-1, "any size"),)),
    # Deployment serving (worker flags and Triton's config.pbtxt, not Envoy).
    ("DeploymentSpec", "replicas"): _REPLICAS,
    ("DeploymentSpec", "instances"): Bound(0, 16, "", _default("1")),
    ("BatchingSpec", "max_batch_size"): Bound(0, 4096),
    ("BatchingSpec", "max_delay_ms"): Bound(0, 10_000, "ms"),
    ("BatchingSpec", "preferred_batch_sizes"): Bound(1, 4096),
    ("BatchingSpec", "priority_levels"): Bound(0, 100, "", ((0, "priorities ignored"),)),
    ("BatchingSpec", "default_priority_level"): Bound(0, 100, "", ((0, "the lowest level"),)),
    # Autoscaler and activator (not Envoy). A tiny target would ask for infinitely many workers.
    ("ScalingSpec", "min_replicas"): _REPLICAS,
    ("ScalingSpec", "max_replicas"): Bound(1, 64),
    ("ScalingSpec", "initial_replicas"): Bound(0, 64, "", ((0, "min_replicas"),)),
    ("ScalingSpec", "target_concurrency"): Bound(
        0.01, 10_000, "requests in flight per worker", _default("4")
    ),
    ("ScalingSpec", "scale_to_zero_after"): Bound(0, 7 * DAY_S, SECONDS, ((0, "never"),)),
    ("ScalingSpec", "cold_start_timeout"): Bound(0, 600, SECONDS, _default("30 s")),
    ("ScalingSpec", "stable_window"): Bound(0.5, HOUR_S, SECONDS, _default("10 s")),
    ("ScalingSpec", "panic_window"): Bound(0.5, HOUR_S, SECONDS, _default("1 s")),
    # Rollouts: weights become weighted_clusters weights (uint32), the rest the controller's.
    ("CanaryStep", "weight"): Bound(1, 100, PERCENT),
    ("CanaryStep", "duration"): Bound(0, DAY_S, SECONDS, low_open=True),
    ("RolloutAnalysis", "max_error_rate_increase"): Bound(
        0, 100, "percentage points", _default("5")
    ),
    ("RolloutAnalysis", "max_latency_ratio"): Bound(1, 1000, "", _default("2")),
    ("RolloutAnalysis", "min_requests"): Bound(0, 1_000_000, "", _default("20")),
    # routing: RouteAction.timeout and max_stream_duration.grpc_timeout_header_max.
    ("RoutingPolicy", "timeout_s"): _duration(DAY_S, "the default, 30 s"),
    # RetryPolicy.num_retries (uint32), per_try_timeout; the retry budget's Percent (0..100)
    # and min_retry_concurrency (uint32).
    ("RetryPolicy", "attempts"): Bound(0, 10, "", _default("3")),
    ("RetryPolicy", "per_try_timeout_s"): _duration(DAY_S, "none: only the request timeout"),
    ("RetryPolicy", "budget_percent"): Bound(0, 100, PERCENT, ((0, "no budget"),)),
    ("RetryPolicy", "min_retry_concurrency"): Bound(0, 10_000),
    # HealthCheck.interval and timeout (`gt: 0`), unhealthy/healthy_threshold (uint32).
    ("HealthCheckPolicy", "interval_s"): _duration(HOUR_S, "the default, 1 s"),
    ("HealthCheckPolicy", "timeout_s"): _duration(HOUR_S, "the default, 2 s"),
    ("HealthCheckPolicy", "unhealthy_threshold"): Bound(1, 1000, "", _default("3")),
    ("HealthCheckPolicy", "healthy_threshold"): Bound(1, 1000, "", _default("1")),
    # OutlierDetection: counts (uint32), interval and base_ejection_time (`gt: 0`),
    # max_ejection_percent (`lte: 100`).
    ("OutlierPolicy", "consecutive_5xx"): Bound(1, 1000, "", _default("5")),
    ("OutlierPolicy", "consecutive_gateway_failure"): Bound(1, 1000, "", _default("3")),
    ("OutlierPolicy", "base_ejection_time_s"): _duration(DAY_S, "the default, 5 s"),
    ("OutlierPolicy", "max_ejection_percent"): Bound(1, 100, PERCENT, _default("50")),
    ("OutlierPolicy", "interval_s"): _duration(HOUR_S, "the default, 1 s"),
    # Offload: the controller's threshold, and EDS host weights from the percent.
    ("OffloadPolicy", "max_inflight_per_replica"): Bound(
        1, 10_000, "requests in flight per replica"
    ),
    ("OffloadPolicy", "max_percent"): Bound(1, 100, PERCENT, _default("50")),
    # traffic: weighted_clusters weights; the mirror's runtime_fraction is per million.
    ("VersionWeight", "weight"): Bound(0, 100, PERCENT),
    ("MirrorPolicy", "percent"): Bound(0.0001, 100, PERCENT),
    # access: HttpConnectionManager.xff_num_trusted_hops (uint32). Real chains in front of a
    # gateway are short (a CDN, a load balancer, an ingress): more than 10 is a wrong count, and
    # a count above the real chain reads an x-forwarded-for entry the client wrote itself.
    ("Firewall", "trusted_hops"): Bound(0, 10, "trusted proxies", ((0, "the connecting peer"),)),
    # rate: a token bucket per entry gateway (local_ratelimit's TokenBucket: max_tokens and
    # tokens_per_fill uint32 above 0, fill_interval a duration). 0 requests per second would
    # mean "refuse everything" (an access policy's job), and a rate near 0 a refill interval
    # beyond any duration Envoy holds: at least one request per 1000 s.
    ("RateLimit", "requests_per_second"): Bound(0.001, 1_000_000, "requests per second"),
    ("RateLimit", "burst"): Bound(
        1, 1_000_000_000, "requests", _default("requests_per_second rounded up")
    ),
    # Region capacity (placement, not Envoy).
    ("RegionSpec", "max_replicas"): Bound(0, 100_000, "", ((0, "unlimited"),)),
}
# Numeric fields the server sets; whatever a document says is replaced.
SERVER_SET: frozenset[tuple[str, str]] = frozenset(
    {("ModelVersion", "size_bytes"), ("VersionFootprint", "memory_bytes")}
)

INTEGER_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
FLOAT_TYPES = frozenset({FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE})
NUMERIC_TYPES = INTEGER_TYPES | FLOAT_TYPES


def bound_of(message: type[Message] | Message, field: str) -> Bound:
    """The bound of `field` of a message type, e.g. bound_of(RoutingPolicy, "timeout_s")."""
    return BOUNDS[(message.DESCRIPTOR.name, field)]


def within(message: Message, field: str) -> bool:
    """Whether the (singular) field's value is in its bound: relational checks skip it if not,
    its own error says enough."""
    value: float = getattr(message, field)
    return bound_of(message, field).allows(value)


def check_bounds(out: DocumentErrors, message: Message, path: str, context: str = "") -> None:
    """Every numeric field of `message` and of the messages it holds, set or not (0 may be out
    of range), against BOUNDS; an error names the field path, the value and the range."""
    if isinstance(message, ModelVersion) and message.name:
        context = f"version '{message.name}'"
    for field in message.DESCRIPTOR.fields:
        here = f"{path}.{field.name}"
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                continue
            if field.is_repeated:
                items: Sequence[Message] = getattr(message, field.name)
                for i, item in enumerate(items):
                    check_bounds(out, item, f"{here}[{i}]", context)
            elif message.HasField(field.name):
                check_bounds(out, getattr(message, field.name), here, context)
            continue
        if field.type not in NUMERIC_TYPES:
            continue
        key = (message.DESCRIPTOR.name, field.name)
        if key in SERVER_SET:
            continue
        bound = BOUNDS[key]
        if field.is_repeated:
            for i, value in enumerate(getattr(message, field.name)):
                _check(out, f"{here}[{i}]", value, bound, context)
        else:
            _check(out, here, getattr(message, field.name), bound, context)


def _check(out: DocumentErrors, path: str, value: float, bound: Bound, context: str) -> None:
    problem = bound.problem(value)
    if problem:
        out.add(path, problem, context)
