"""Rollouts: how a deployment's version change reaches its traffic, judged and reversible."""

from controlplane.rollout.analysis import TrafficTotals, Verdict, judge, p99_ms
from controlplane.rollout.controller import RolloutController, RolloutError, RolloutView
from controlplane.rollout.settings import RolloutSettings, rollout_settings

__all__ = [
    "RolloutController",
    "RolloutError",
    "RolloutSettings",
    "RolloutView",
    "TrafficTotals",
    "Verdict",
    "judge",
    "p99_ms",
    "rollout_settings",
]
