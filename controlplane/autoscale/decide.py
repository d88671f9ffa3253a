"""How many workers a region should run for one deployment track: a pure function.

Like Knative's KPA: the mean concurrency over a short panic window scales up at once, the mean
over the longer stable window holds replicas until the load has really gone, and a region
with nothing to do for `scale_to_zero_after` goes to zero (when the deployment allows it).
"""

from __future__ import annotations

import math

from controlplane.policy.scaling import ScalingSettings

# Float noise must not add a worker: 8.0000001 / 4 in flight is 2 workers.
_EPSILON = 1e-6


def workers_for(concurrency: float, target: float) -> int:
    return max(0, math.ceil(concurrency / target - _EPSILON))


def desired_replicas(
    settings: ScalingSettings,
    *,
    panic_concurrency: float,
    stable_concurrency: float,
    idle_s: float,
    held: int = 0,
) -> int:
    """Desired workers, within [min_replicas, max_replicas] (0 only when it may scale to zero)."""
    if not settings.autoscaled:
        return settings.min_replicas
    target = settings.target_concurrency
    want = max(
        workers_for(panic_concurrency, target),
        workers_for(stable_concurrency, target),
        workers_for(held, target),
    )
    floor = settings.min_replicas
    if not settings.scales_to_zero or idle_s < settings.scale_to_zero_after_s or held:
        floor = max(floor, 1)
    return min(settings.max_replicas, max(want, floor))
