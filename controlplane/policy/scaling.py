"""A deployment's scaling as typed, defaulted settings: fixed replicas or the autoscaler's bounds.

Zero values in the ScalingSpec mean "the default", as everywhere in the API; only
`scale_to_zero_after` tells unset (the default) from 0 (never).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from meshline.v1.resources_pb2 import DeploymentSpec, ScalingSpec

DEFAULT_TARGET_CONCURRENCY = 4.0
DEFAULT_COLD_START_TIMEOUT_S = 30.0
DEFAULT_STABLE_WINDOW_S = 10.0
DEFAULT_PANIC_WINDOW_S = 1.0
# Idle seconds before a region of a min_replicas-0 deployment goes back to zero, when the
# deployment does not say (Knative's stable window plus its grace period, rounded).
DEFAULT_SCALE_TO_ZERO_AFTER_S = 60.0
NEVER = math.inf


@dataclass(frozen=True)
class ScalingSettings:
    """Per region: at least `min_replicas`, at most `max_replicas` workers of each track."""

    min_replicas: int
    max_replicas: int
    autoscaled: bool = False
    target_concurrency: float = DEFAULT_TARGET_CONCURRENCY
    scale_to_zero_after_s: float = NEVER  # idle seconds before going back to zero
    initial_replicas: int = 0  # workers a region starts with, before load decides
    cold_start_timeout_s: float = DEFAULT_COLD_START_TIMEOUT_S
    stable_window_s: float = DEFAULT_STABLE_WINDOW_S
    panic_window_s: float = DEFAULT_PANIC_WINDOW_S

    @property
    def scales_to_zero(self) -> bool:
        """A region may be at zero workers (it starts there unless initial_replicas says
        otherwise, and goes back after scale_to_zero_after idle seconds unless that is never);
        the activator holds its requests while it wakes."""
        return self.autoscaled and self.min_replicas == 0

    @staticmethod
    def fixed(replicas: int) -> ScalingSettings:
        return ScalingSettings(min_replicas=replicas, max_replicas=replicas)


def scaling_settings(spec: DeploymentSpec) -> ScalingSettings:
    if not spec.HasField("scaling"):
        return ScalingSettings.fixed(spec.replicas)
    s = spec.scaling
    return ScalingSettings(
        min_replicas=s.min_replicas,
        max_replicas=max(s.max_replicas, s.min_replicas, 1),
        autoscaled=True,
        target_concurrency=s.target_concurrency or DEFAULT_TARGET_CONCURRENCY,
        scale_to_zero_after_s=_scale_to_zero_after(s),
        initial_replicas=max(s.initial_replicas, s.min_replicas),
        cold_start_timeout_s=s.cold_start_timeout or DEFAULT_COLD_START_TIMEOUT_S,
        stable_window_s=s.stable_window or DEFAULT_STABLE_WINDOW_S,
        panic_window_s=s.panic_window or DEFAULT_PANIC_WINDOW_S,
    )


def _scale_to_zero_after(s: ScalingSpec) -> float:
    if s.min_replicas > 0:
        return NEVER
    if not s.HasField("scale_to_zero_after"):
        return DEFAULT_SCALE_TO_ZERO_AFTER_S
    return s.scale_to_zero_after or NEVER
