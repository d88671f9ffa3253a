"""Time-weighted means: reports arrive irregularly, the signal holds between them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


class _EverySample:
    """The window as it was before equal values were merged: one sample per report. The
    reference the merged window must agree with."""

    def __init__(self, horizon_s: float) -> None:
        self.horizon_s = horizon_s
        self.samples: list[tuple[float, float]] = []

    def add(self, now: float, value: float) -> None:
        if self.samples and self.samples[-1][0] >= now:
            self.samples[-1] = (self.samples[-1][0], value)
        else:
            self.samples.append((now, value))
        while len(self.samples) > 1 and self.samples[1][0] <= now - self.horizon_s:
            self.samples.pop(0)

    def mean(self, now: float, window_s: float) -> float:
        if not self.samples:
            return 0.0
        total = covered = 0.0
        for (before, _), (t, value) in zip(self.samples, self.samples[1:], strict=False):
            lo, hi = max(before, now - window_s), min(t, now)
            if hi > lo:
                total += value * (hi - lo)
                covered += hi - lo
        return total / covered if covered > 0 else self.samples[-1][1]

    def peak(self, now: float, window_s: float) -> float:
        start = now - window_s
        best = self.samples[-1][1] if self.samples and self.samples[-1][0] >= start else 0.0
        for _, (t, value) in zip(self.samples, self.samples[1:], strict=False):
            if t >= start:
                best = max(best, value)
        return best


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.sampled_from([0.0, 0.0, 0.0, 1.0, 2.0, 5.0])),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from([1.0, 3.0, 10.0]),
)
def test_one_sample_per_change_gives_every_mean_and_peak_of_one_per_report(
    reports: list[tuple[int, float]], window_s: float
) -> None:
    """Reports of an unchanged value are merged into the last sample: every mean and peak over
    any window is what a window holding every report gives."""
    merged, every = LoadWindow(horizon_s=10), _EverySample(horizon_s=10)
    now = 0.0
    for step, value in reports:
        now += step / 10
        merged.add(now, value)
        every.add(now, value)
        for later in (now, now + 0.5, now + 5):
            assert merged.mean(later, window_s) == pytest.approx(every.mean(later, window_s))
            assert merged.peak(later, window_s) == every.peak(later, window_s)


def test_an_idle_track_holds_two_samples_however_often_it_is_read() -> None:
    """Thousands of idle tracks are read on every rebuild: their windows must not grow with
    the number of rebuilds."""
    window = LoadWindow(horizon_s=60)
    for i in range(1000):
        window.add(i * 0.01, 0.0)
    assert len(window) == 2
    window.add(10.5, 3.0)
    window.add(10.6, 3.0)
    assert len(window) == 3
    assert window.mean(10.6, 0.6) == pytest.approx(3.0)  # the step speaks for (9.99, 10.6]
