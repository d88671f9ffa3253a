"""Desired replicas: fast up on the panic window, down only when the stable window agrees,
zero only after the idle time and only when the deployment allows it."""

from __future__ import annotations

import pytest

from controlplane.autoscale import desired_replicas
from controlplane.policy.scaling import NEVER, ScalingSettings

AUTO = ScalingSettings(
    min_replicas=0,
    max_replicas=5,
    autoscaled=True,
    target_concurrency=2,
    scale_to_zero_after_s=30,
)


@pytest.mark.parametrize(
    ("panic", "stable", "idle", "held", "expected"),
    [
        (0, 0, 0, 0, 1),  # busy recently: keep one
        (0, 0, 31, 0, 0),  # idle long enough: zero
        (0, 0, 31, 3, 2),  # requests held at zero: wake with enough for them
        (8, 1, 0, 0, 4),  # a step: panic window scales up at once
        (1, 6, 0, 0, 3),  # load just went: the stable window holds the replicas
        (4.0000001, 0, 0, 0, 2),  # float noise adds no worker
        (100, 100, 0, 0, 5),  # never beyond max_replicas
    ],
)
def test_desired_replicas(
    panic: float, stable: float, idle: float, held: int, expected: int
) -> None:
    got = desired_replicas(
        AUTO, panic_concurrency=panic, stable_concurrency=stable, idle_s=idle, held=held
    )
    assert got == expected


def test_scale_to_zero_off_keeps_one_worker_even_when_idle() -> None:
    settings = ScalingSettings(0, 3, autoscaled=True, scale_to_zero_after_s=NEVER)
    assert desired_replicas(settings, panic_concurrency=0, stable_concurrency=0, idle_s=10_000) == 1


def test_min_replicas_is_a_floor() -> None:
    settings = ScalingSettings(2, 4, autoscaled=True)
    assert desired_replicas(settings, panic_concurrency=0, stable_concurrency=0, idle_s=99) == 2


def test_fixed_replicas_ignore_load() -> None:
    assert (
        desired_replicas(
            ScalingSettings.fixed(3), panic_concurrency=50, stable_concurrency=50, idle_s=0
        )
        == 3
    )
