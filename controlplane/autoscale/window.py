"""Time-weighted means of a load signal sampled at irregular times.

Reports arrive when something changes (about every 0.5 s under load, every few seconds when
idle), so a plain mean of samples would weigh a burst of reports more than a quiet minute.
Each sample stands for the stretch since the one before it (what the agent saw over that
interval), so a step weighs in as soon as it is first reported, not one report later.
"""

from __future__ import annotations

import itertools
from collections import deque


class LoadWindow:
    def __init__(self, horizon_s: float) -> None:
        self.horizon_s = horizon_s
        self._samples: deque[tuple[float, float]] = deque()
        # Where the last sample was before it was last stretched to a report of the same value
        # (None: it was not).
        self._merged_from: float | None = None

    def add(self, now: float, value: float) -> None:
        samples = self._samples
        if samples and samples[-1][0] >= now:
            last_t, last_value = samples[-1]
            if self._merged_from is not None and value != last_value:
                # The last sample was stretched over reports of the same value: the stretch up
                # to the report before this instant keeps it, this instant's gets the new one.
                samples[-1] = (self._merged_from, last_value)
                samples.append((last_t, value))
                self._merged_from = None
            else:
                samples[-1] = (last_t, value)  # same instant: the newest wins
        elif len(samples) > 1 and samples[-1][1] == value:
            # The same value again: the last sample now stands for the stretch up to `now`
            # too (the means and peaks are the same), so a window holds one sample per change,
            # not one per rebuild (thousands of idle tracks are read on every pass).
            self._merged_from = samples[-1][0]
            samples[-1] = (now, value)
        else:
            samples.append((now, value))
            self._merged_from = None
        # Keep one sample from before the horizon: it says what the signal was at its start.
        while len(samples) > 1 and samples[1][0] <= now - self.horizon_s:
            samples.popleft()

    def __len__(self) -> int:
        return len(self._samples)

    def mean(self, now: float, window_s: float) -> float:
        """Mean over [now - window_s, now]; time no sample speaks for does not count."""
        samples = list(self._samples)
        if not samples:
            return 0.0
        start = now - window_s
        total = 0.0
        covered = 0.0
        for (before, _), (t, value) in itertools.pairwise(samples):
            lo, hi = max(before, start), min(t, now)
            if hi > lo:
                total += value * (hi - lo)
                covered += hi - lo
        if covered <= 0:
            return samples[-1][1]
        return total / covered

    def peak(self, now: float, window_s: float) -> float:
        """The highest value reported for any time in the window."""
        samples = list(self._samples)
        start = now - window_s
        best = samples[-1][1] if samples and samples[-1][0] >= start else 0.0
        for (_, _), (t, value) in itertools.pairwise(samples):
            if t >= start:
                best = max(best, value)
        return best
