"""When `meshline up` starts a dead process again, and what it says: the pure decision."""

from __future__ import annotations

import pytest

from meshline.process.restarts import (
    MAX_BACKOFF_S,
    STABLE_AFTER_S,
    Exit,
    backoff_s,
    how_it_ended,
    plan_restart,
)


@pytest.mark.parametrize(
    ("failures", "delay_s"),
    [(1, 0.0), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 16.0), (7, 30.0), (50, 30.0)],
)
def test_backoff_starts_at_once_then_doubles_to_its_cap(failures: int, delay_s: float) -> None:
    assert backoff_s(failures) == delay_s
    assert backoff_s(failures) <= MAX_BACKOFF_S


@pytest.mark.parametrize(
    ("failures_before", "ran_s", "failures", "delay_s"),
    [
        (0, 0.5, 1, 0.0),  # a fresh process's first crash: at once
        (0, 3600.0, 1, 0.0),
        (1, 0.5, 2, 1.0),  # crashed again soon after its restart: backs off
        (2, 2.0, 3, 2.0),
        (9, 1.0, 10, MAX_BACKOFF_S),  # a crash loop: capped, never given up
        (9, STABLE_AFTER_S, 1, 0.0),  # ran long enough: the count starts over
        (3, STABLE_AFTER_S - 0.1, 4, 4.0),
    ],
)
def test_short_runs_in_a_row_back_off_and_a_stable_run_starts_over(
    failures_before: int, ran_s: float, failures: int, delay_s: float
) -> None:
    plan = plan_restart("agent-eu", failures_before, Exit(1, ran_s, "boom"))
    assert (plan.failures, plan.delay_s) == (failures, delay_s)


@pytest.mark.parametrize(
    ("returncode", "said"),
    [
        (-9, "was killed by SIGKILL"),
        (-15, "was killed by SIGTERM"),
        (-11, "was killed by SIGSEGV"),
        (1, "exited with code 1"),
        (0, "exited with code 0"),
        (-200, "was killed by signal 200"),
    ],
)
def test_how_it_ended_names_the_signal_or_the_code(returncode: int, said: str) -> None:
    assert how_it_ended(returncode) == said


def test_the_message_says_which_how_why_and_when() -> None:
    killed = plan_restart(
        "controlplane", 0, Exit(-9, 125.0, "INFO controlplane.xds: pushed 12.4 to eu")
    )
    assert killed.message == (
        "controlplane was killed by SIGKILL after 2m05s "
        "(last log line: INFO controlplane.xds: pushed 12.4 to eu); starting it again now"
    )
    looping = plan_restart(
        "agent-us", 2, Exit(1, 0.8, "agent for region us: refused: the region was deleted")
    )
    assert looping.message == (
        "agent-us exited with code 1 after 0.8s, 3rd short run in a row "
        "(last log line: agent for region us: refused: the region was deleted); "
        "starting it again in 2s (backing off, at most 30s)"
    )
    silent = plan_restart("agent-eu", 0, Exit(-9, 7200.0, ""))
    assert silent.message == (
        "agent-eu was killed by SIGKILL after 2h00m (its log is empty); starting it again now"
    )
