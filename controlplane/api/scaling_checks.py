"""Apply-time checks of a deployment's `scaling`: impossible bounds are errors naming the field."""

from __future__ import annotations

from controlplane.api.errors import DocumentErrors
from meshline.v1.resources_pb2 import DeploymentSpec, ModelVersion

MAX_REPLICAS = 64
MAX_TARGET_CONCURRENCY = 10_000.0
MAX_IDLE_S = 7 * 24 * 3600.0
MAX_COLD_START_TIMEOUT_S = 600.0
MAX_WINDOW_S = 3600.0
# The autoscaler decides on samples about 0.5 s apart: shorter windows would be noise.
MIN_WINDOW_S = 0.5


def check_scaling(out: DocumentErrors, spec: DeploymentSpec, version: ModelVersion | None) -> None:
    if not spec.HasField("scaling"):
        return
    here = "spec.scaling"
    s = spec.scaling
    if spec.replicas:
        out.add(
            "spec.replicas",
            f"set replicas or scaling, not both: with scaling the autoscaler decides the "
            f"replicas (got replicas {spec.replicas})",
        )
    if not 0 <= s.min_replicas <= MAX_REPLICAS:
        out.add(
            f"{here}.min_replicas", f"must be between 0 and {MAX_REPLICAS}, got {s.min_replicas}"
        )
    if not 1 <= s.max_replicas <= MAX_REPLICAS:
        out.add(
            f"{here}.max_replicas", f"must be between 1 and {MAX_REPLICAS}, got {s.max_replicas}"
        )
    elif s.min_replicas > s.max_replicas:
        out.add(
            f"{here}.max_replicas",
            f"must be at least min_replicas ({s.min_replicas}), got {s.max_replicas}",
        )
    if not 0 <= s.target_concurrency <= MAX_TARGET_CONCURRENCY:
        out.add(
            f"{here}.target_concurrency",
            f"must be between 0 (the default, 4) and {MAX_TARGET_CONCURRENCY:g} requests in "
            f"flight per worker, got {s.target_concurrency:g}",
        )
    if not 0 <= s.scale_to_zero_after <= MAX_IDLE_S:
        out.add(
            f"{here}.scale_to_zero_after",
            f"must be between 0 (never) and {MAX_IDLE_S:g} seconds, got {s.scale_to_zero_after:g}",
        )
    elif s.scale_to_zero_after > 0 and s.min_replicas > 0:
        out.add(
            f"{here}.scale_to_zero_after",
            f"scaling to zero needs min_replicas 0, got min_replicas {s.min_replicas} (set "
            "scale_to_zero_after 0 to keep workers, or min_replicas 0 to let them go)",
        )
    if not 0 <= s.cold_start_timeout <= MAX_COLD_START_TIMEOUT_S:
        out.add(
            f"{here}.cold_start_timeout",
            f"must be between 0 (the default, 30) and {MAX_COLD_START_TIMEOUT_S:g} seconds, got "
            f"{s.cold_start_timeout:g}",
        )
    for name, value in (("stable_window", s.stable_window), ("panic_window", s.panic_window)):
        if value and not MIN_WINDOW_S <= value <= MAX_WINDOW_S:
            out.add(
                f"{here}.{name}",
                f"must be 0 (the default) or between {MIN_WINDOW_S:g} and {MAX_WINDOW_S:g} "
                f"seconds, got {value:g}",
            )
    if s.stable_window and s.panic_window and s.panic_window > s.stable_window:
        out.add(
            f"{here}.panic_window",
            f"must not be longer than stable_window ({s.stable_window:g} s), got "
            f"{s.panic_window:g}",
        )
    if version is not None and version.HasField("external"):
        out.add(
            here,
            f"model '{spec.model}' version '{spec.version}' is an external Triton, one endpoint "
            "that meshline does not start: it cannot be autoscaled",
        )
