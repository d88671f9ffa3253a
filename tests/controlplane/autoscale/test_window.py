"""Time-weighted means: reports arrive irregularly, the signal holds between them."""

from __future__ import annotations

import pytest

from controlplane.autoscale import LoadWindow


def test_mean_weighs_each_value_by_the_stretch_it_reports_on() -> None:
    window = LoadWindow(horizon_s=10)
    window.add(0.0, 0.0)
    window.add(8.0, 0.0)
    window.add(10.0, 10.0)  # reported at t=10: the load of (8, 10]
    # Over the last 10 s: 8 s at 0, 2 s at 10.
    assert window.mean(10.0, 10.0) == pytest.approx(2.0)
    # Over the last 1 s: all at 10, as soon as the step is first reported.
    assert window.mean(10.0, 1.0) == pytest.approx(10.0)


def test_many_reports_in_a_burst_do_not_outweigh_a_quiet_stretch() -> None:
    window = LoadWindow(horizon_s=10)
    window.add(0.0, 0.0)
    window.add(9.0, 0.0)
    for i in range(1, 11):  # ten reports in the last second
        window.add(9.0 + i * 0.1, 5.0)
    # 9 s at 0 and 1 s at 5.
    assert window.mean(10.0, 10.0) == pytest.approx(0.5)


def test_time_before_the_first_sample_does_not_count() -> None:
    window = LoadWindow(horizon_s=10)
    window.add(5.0, 4.0)
    assert window.mean(6.0, 10.0) == pytest.approx(4.0)
    window.add(6.0, 2.0)
    assert window.mean(6.0, 10.0) == pytest.approx(2.0)


def test_old_samples_are_dropped_but_the_value_at_the_horizon_is_kept() -> None:
    window = LoadWindow(horizon_s=3)
    window.add(0.0, 6.0)
    window.add(1.0, 6.0)
    window.add(100.0, 6.0)  # the 6 held until t=100
    window.add(102.0, 0.0)
    # The window [99, 102]: 1 s at 6, 2 s at 0.
    assert window.mean(102.0, 3.0) == pytest.approx(2.0)
    assert window.peak(102.0, 3.0) == 6.0
    assert window.peak(110.0, 2.0) == 0.0


def test_empty_window_is_zero() -> None:
    assert LoadWindow(5).mean(1.0, 5.0) == 0.0
