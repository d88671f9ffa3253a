"""A deployment's scaling as typed, defaulted settings: fixed replicas or the autoscaler's bounds.

Zero values in the ScalingSpec mean "the default", as everywhere in the API.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshline.v1.resources_pb2 import DeploymentSpec

DEFAULT_TARGET_CONCURRENCY = 4.0
DEFAULT_COLD_START_TIMEOUT_S = 30.0
DEFAULT_STABLE_WINDOW_S = 10.0
DEFAULT_PANIC_WINDOW_S = 1.0


@dataclass(frozen=True)
class ScalingSettings:
    """Per region: at least `min_replicas`, at most `max_replicas` workers of each track."""

    min_replicas: int
    max_replicas: int
    autoscaled: bool = False
    target_concurrency: float = DEFAULT_TARGET_CONCURRENCY
    scale_to_zero_after_s: float = 0.0  # 0 = never
    cold_start_timeout_s: float = DEFAULT_COLD_START_TIMEOUT_S
    stable_window_s: float = DEFAULT_STABLE_WINDOW_S
    panic_window_s: float = DEFAULT_PANIC_WINDOW_S

    @property
    def scales_to_zero(self) -> bool:
        """Idle regions go to zero workers; the activator holds requests while they wake."""
        return self.autoscaled and self.min_replicas == 0 and self.scale_to_zero_after_s > 0

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
        scale_to_zero_after_s=s.scale_to_zero_after,
        cold_start_timeout_s=s.cold_start_timeout or DEFAULT_COLD_START_TIMEOUT_S,
        stable_window_s=s.stable_window or DEFAULT_STABLE_WINDOW_S,
        panic_window_s=s.panic_window or DEFAULT_PANIC_WINDOW_S,
    )
