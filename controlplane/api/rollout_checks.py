"""Apply-time checks of a deployment's `rollout`."""

from __future__ import annotations

from controlplane.api.errors import DocumentErrors
from controlplane.rollout.settings import CANARY, STRATEGIES
from meshline.v1.resources_pb2 import DeploymentSpec

MAX_STEP_S = 24 * 3600.0


def check_rollout(out: DocumentErrors, spec: DeploymentSpec) -> None:
    if not spec.HasField("rollout"):
        return
    here = "spec.rollout"
    r = spec.rollout
    if r.strategy and r.strategy not in STRATEGIES:
        out.add(
            f"{here}.strategy",
            f"unknown strategy '{r.strategy}' (one of: {', '.join(STRATEGIES)})",
        )
    if r.steps and r.strategy != CANARY:
        out.add(f"{here}.steps", "steps are for strategy canary")
    previous = 0
    for i, step in enumerate(r.steps):
        where = f"{here}.steps[{i}]"
        if not 1 <= step.weight <= 100:
            out.add(f"{where}.weight", f"must be between 1 and 100 percent, got {step.weight}")
        elif step.weight <= previous:
            out.add(
                f"{where}.weight",
                f"steps must grow: {step.weight}% after {previous}%",
            )
        previous = max(previous, step.weight)
        if not 0 < step.duration <= MAX_STEP_S:
            out.add(
                f"{where}.duration",
                f"must be between 0 and {MAX_STEP_S:g} seconds (exclusive of 0), got "
                f"{step.duration:g}",
            )
    a = r.analysis
    if not 0 <= a.max_error_rate_increase <= 100:
        out.add(
            f"{here}.analysis.max_error_rate_increase",
            f"must be between 0 (the default, 5) and 100 percentage points, got "
            f"{a.max_error_rate_increase:g}",
        )
    if a.max_latency_ratio and a.max_latency_ratio < 1:
        out.add(
            f"{here}.analysis.max_latency_ratio",
            f"must be 0 (the default, 2) or at least 1, got {a.max_latency_ratio:g}",
        )
    if a.min_requests < 0:
        out.add(f"{here}.analysis.min_requests", f"must not be negative, got {a.min_requests}")
    if r.strategy == CANARY and any(p.WhichOneof("rule") == "traffic" for p in spec.policies):
        out.add(
            f"{here}.strategy",
            "a canary rollout sets the split between the versions itself: remove the "
            "deployment's traffic policy, or use strategy immediate",
        )
