"""Typed, defaulted settings that policies resolve to; what the IR and translate consume.

Zero values in a policy message mean "the default", so a YAML file names only what it changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STRATEGIES: tuple[str, ...] = ("round_robin", "least_request", "random", "ring_hash")
STRATEGY_DEFAULT = "round_robin"
PREFERENCE_NEAREST = "nearest"
PREFERENCE_ORDERED = "ordered"
PREFERENCES: tuple[str, ...] = (PREFERENCE_NEAREST, PREFERENCE_ORDERED)

# Failures that never reached the model, or that the model side reports as "try elsewhere".
# `cancelled`: a gRPC server that is stopping (a worker whose region or agent just died gets
# SIGTERM) answers CANCELLED, headers only, for calls it had received but never handed to the
# model (and for any still running when its shutdown grace ends: those may run twice, which
# side-effect-free inference allows); Envoy retries only a CANCELLED in the response headers,
# i.e. with no answer sent, and never one the client cancelled itself (that request is gone).
DEFAULT_RETRY_ON: tuple[str, ...] = (
    "reset",
    "connect-failure",
    "refused-stream",
    "unavailable",
    "cancelled",
    "retriable-status-codes",
)
# What users may list in routing.retries.retry_on (Envoy's HTTP and gRPC conditions).
RETRY_CONDITIONS: frozenset[str] = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "reset-before-request",
        "connect-failure",
        "envoy-ratelimited",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "http3-post-connect-failure",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)


@dataclass(frozen=True)
class RetrySettings:
    """Retries on failures that never reached the model (safe to replay)."""

    num_retries: int = 3
    per_try_timeout_s: float = 0.0  # 0 = none; only the route timeout applies
    retry_on: tuple[str, ...] = DEFAULT_RETRY_ON
    retriable_status_codes: tuple[int, ...] = (503,)
    backoff_base_s: float = 0.025
    backoff_max_s: float = 0.25
    # Envoy retry budget: retries may add this % to active requests (0 = no budget, a cap).
    budget_percent: float = 0.0
    min_retry_concurrency: int = 0


@dataclass(frozen=True)
class HealthCheckSettings:
    """Active health checking of workers (and of other regions' gateways) by a gateway."""

    interval_s: float = 1.0
    # Generous: a saturated worker answers health checks late, and ejecting it for that
    # would take capacity away exactly under load. Crashes are caught faster by resets.
    timeout_s: float = 2.0
    unhealthy_threshold: int = 3
    healthy_threshold: int = 1


@dataclass(frozen=True)
class OutlierSettings:
    """Passive ejection of workers and gateways that fail requests."""

    consecutive_5xx: int = 5
    consecutive_gateway_failure: int = 3
    interval_s: float = 1.0
    base_ejection_time_s: float = 5.0
    max_ejection_percent: int = 50


@dataclass(frozen=True)
class RoutingSettings:
    strategy: str = STRATEGY_DEFAULT
    hash_header: str = ""  # ring_hash only
    timeout_s: float = 30.0
    retry: RetrySettings = field(default_factory=RetrySettings)
    region_preference: str = PREFERENCE_NEAREST
    region_order: tuple[str, ...] = ()


@dataclass(frozen=True)
class FailoverSettings:
    enabled: bool = True
    regions: tuple[str, ...] = ()  # empty = every other allowed region, in preference order
    health_check: HealthCheckSettings = field(default_factory=HealthCheckSettings)
    outlier: OutlierSettings = field(default_factory=OutlierSettings)


@dataclass(frozen=True)
class OffloadSettings:
    max_inflight_per_replica: int = 0  # 0 = offload off
    max_percent: int = 50
    regions: tuple[str, ...] = ()  # empty = the other allowed regions, in preference order

    @property
    def enabled(self) -> bool:
        return self.max_inflight_per_replica > 0


@dataclass(frozen=True)
class Track:
    """One model version a deployment runs: its own version, a split leg, or a mirror."""

    name: str  # "" = the deployment's own version; otherwise the version name
    version: str
    weight: int  # percent of requests (0 for a mirror-only version)
    mirror_percent: float = 0.0
