"""Apply-time checks of a deployment's `rollout` (each number's own range is in bounds.py)."""

from __future__ import annotations

from controlplane.api.bounds import within
from controlplane.api.errors import DocumentErrors
from controlplane.rollout.settings import CANARY, STRATEGIES
from meshline.v1.resources_pb2 import DeploymentSpec


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
        if not within(step, "weight"):
            continue
        if step.weight <= previous:
            out.add(
                f"{where}.weight",
                f"steps must grow: {step.weight}% after {previous}%",
            )
        previous = max(previous, step.weight)
    if r.strategy == CANARY and any(p.WhichOneof("rule") == "traffic" for p in spec.policies):
        out.add(
            f"{here}.strategy",
            "a canary rollout sets the split between the versions itself: remove the "
            "deployment's traffic policy, or use strategy immediate",
        )
