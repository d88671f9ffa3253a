"""A deployment's scaling settings from its spec: the defaults that decide whether anything
runs before the first request, and when a region goes back to zero."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format

from controlplane.policy.scaling import (
    DEFAULT_SCALE_TO_ZERO_AFTER_S,
    NEVER,
    ScalingSettings,
    scaling_settings,
)
from meshline.v1.resources_pb2 import DeploymentSpec


def _settings(spec: dict[str, Any]) -> ScalingSettings:
    return scaling_settings(json_format.ParseDict(spec, DeploymentSpec()))


@pytest.mark.parametrize(
    ("scaling", "scales_to_zero", "after_s", "initial"),
    [
        # min_replicas 0 and nothing else: starts at zero, back to zero after the default.
        ({"min_replicas": 0, "max_replicas": 1}, True, DEFAULT_SCALE_TO_ZERO_AFTER_S, 0),
        ({"max_replicas": 3, "scale_to_zero_after": 5}, True, 5.0, 0),
        # 0 written: never back to zero, but still nothing until the first request.
        ({"max_replicas": 3, "scale_to_zero_after": 0}, True, NEVER, 0),
        ({"max_replicas": 3, "initial_replicas": 2}, True, DEFAULT_SCALE_TO_ZERO_AFTER_S, 2),
        # A floor: never at zero, starts at the floor.
        ({"min_replicas": 2, "max_replicas": 3}, False, NEVER, 2),
        ({"min_replicas": 1, "max_replicas": 3, "initial_replicas": 3}, False, NEVER, 3),
    ],
)
def test_scaling_defaults(
    scaling: dict[str, Any], scales_to_zero: bool, after_s: float, initial: int
) -> None:
    got = _settings({"scaling": scaling})
    assert (got.scales_to_zero, got.scale_to_zero_after_s, got.initial_replicas) == (
        scales_to_zero,
        after_s,
        initial,
    )


def test_fixed_replicas_are_not_autoscaled() -> None:
    got = _settings({"replicas": 2})
    assert (got.autoscaled, got.scales_to_zero, got.min_replicas, got.max_replicas) == (
        False,
        False,
        2,
        2,
    )
