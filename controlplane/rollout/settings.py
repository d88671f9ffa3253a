"""A deployment's RolloutSpec as typed, defaulted settings."""

from __future__ import annotations

from dataclasses import dataclass

from meshline.v1.resources_pb2 import DeploymentSpec

IMMEDIATE = "immediate"
CANARY = "canary"
STRATEGIES = (IMMEDIATE, CANARY)
DEFAULT_MAX_ERROR_RATE_INCREASE = 5.0  # percentage points
DEFAULT_MAX_LATENCY_RATIO = 2.0
DEFAULT_MIN_REQUESTS = 20
# Default canary: a tenth, then half, each for a minute, then everything.
DEFAULT_STEPS: tuple[tuple[int, float], ...] = ((10, 60.0), (50, 60.0))


@dataclass(frozen=True)
class RolloutSettings:
    strategy: str = IMMEDIATE
    steps: tuple[tuple[int, float], ...] = ()  # (weight percent, seconds); canary only
    max_error_rate_increase: float = DEFAULT_MAX_ERROR_RATE_INCREASE
    max_latency_ratio: float = DEFAULT_MAX_LATENCY_RATIO
    min_requests: int = DEFAULT_MIN_REQUESTS


def rollout_settings(spec: DeploymentSpec) -> RolloutSettings:
    r = spec.rollout
    strategy = r.strategy or IMMEDIATE
    steps = tuple((s.weight, s.duration) for s in r.steps)
    if strategy == CANARY and not steps:
        steps = DEFAULT_STEPS
    a = r.analysis
    return RolloutSettings(
        strategy=strategy,
        steps=steps,
        max_error_rate_increase=a.max_error_rate_increase or DEFAULT_MAX_ERROR_RATE_INCREASE,
        max_latency_ratio=a.max_latency_ratio or DEFAULT_MAX_LATENCY_RATIO,
        min_requests=a.min_requests or DEFAULT_MIN_REQUESTS,
    )
