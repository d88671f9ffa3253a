"""Time-weighted means of a step signal sampled at irregular times.

Reports arrive when something changes (about every 0.5 s under load, every few seconds when
idle), so a plain mean of samples would weigh a burst of reports more than a quiet minute.
Between two samples the signal is taken to stay at the earlier one's value.
"""

from __future__ import annotations

from collections import deque


class LoadWindow:
    def __init__(self, horizon_s: float) -> None:
        self.horizon_s = horizon_s
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, now: float, value: float) -> None:
        if self._samples and self._samples[-1][0] >= now:
            self._samples[-1] = (self._samples[-1][0], value)  # same instant: the newest wins
        else:
            self._samples.append((now, value))
        # Keep one sample from before the horizon: it says what the signal was at its start.
        while len(self._samples) > 1 and self._samples[1][0] <= now - self.horizon_s:
            self._samples.popleft()

    def mean(self, now: float, window_s: float) -> float:
        """Mean over [now - window_s, now]; time before the first sample does not count."""
        if not self._samples:
            return 0.0
        start = now - window_s
        total = 0.0
        covered = 0.0
        samples = list(self._samples)
        for i, (t, value) in enumerate(samples):
            end = samples[i + 1][0] if i + 1 < len(samples) else now
            lo, hi = max(t, start), min(end, now)
            if hi > lo:
                total += value * (hi - lo)
                covered += hi - lo
        if covered <= 0:
            return samples[-1][1]
        return total / covered

    def peak(self, now: float, window_s: float) -> float:
        """The highest value the signal held during the window."""
        start = now - window_s
        samples = list(self._samples)
        best = 0.0
        for i, (_, value) in enumerate(samples):
            end = samples[i + 1][0] if i + 1 < len(samples) else now
            if end >= start:
                best = max(best, value)
        return best
