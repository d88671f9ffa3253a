"""When a supervised process that died is started again, and what is said about it: pure.

`meshline up` keeps its control plane and each region's agent running. A process that ran for
STABLE_AFTER_S or longer before it died is started again at once (the first crash in a while: a
SIGKILL, an OOM kill); each further short run in a row doubles the wait (1 s, 2 s, 4 s, ...,
capped at MAX_BACKOFF_S), so a process that cannot start (a port taken, a broken state
directory) is retried for as long as `up` runs without spinning, and every try says why.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

STABLE_AFTER_S = 30.0
MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class Exit:
    """How one run of a supervised process ended."""

    returncode: int  # negative: killed by that signal (subprocess's convention)
    ran_s: float
    last_line: str  # its log's last line of that run ("" when it wrote none)


@dataclass(frozen=True)
class Restart:
    """What the supervisor does about one exit."""

    failures: int  # short runs in a row, this one included (1: the first in a while)
    delay_s: float  # wait before starting it again
    message: str  # one line for the console: which, how it ended, why, when it restarts


def backoff_s(failures: int) -> float:
    """0 for the first crash in a while, then 1 s doubling, capped."""
    if failures <= 1:
        return 0.0
    return float(min(2 ** (failures - 2), MAX_BACKOFF_S))


def how_it_ended(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


def plan_restart(name: str, failures_before: int, ended: Exit) -> Restart:
    """`failures_before`: short runs in a row before this one (0 for a fresh process)."""
    failures = 1 if ended.ran_s >= STABLE_AFTER_S else failures_before + 1
    delay = backoff_s(failures)
    in_a_row = f", {_ordinal(failures)} short run in a row" if failures > 1 else ""
    said = f" (last log line: {ended.last_line})" if ended.last_line else " (its log is empty)"
    when = (
        "starting it again now"
        if delay == 0
        else f"starting it again in {delay:g}s (backing off, at most {MAX_BACKOFF_S:g}s)"
    )
    message = (
        f"{name} {how_it_ended(ended.returncode)} after {_duration(ended.ran_s)}"
        f"{in_a_row}{said}; {when}"
    )
    return Restart(failures, delay, message)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
