"""What a probe's answer does to a worker, as a table."""

from __future__ import annotations

import pytest

from meshline.v1 import agent_pb2
from workers.agent.health import ProbeOutcome, after_probe

State = agent_pb2.WorkerState
HEALTHY, STARTING, UNHEALTHY = (
    State.WORKER_STATE_HEALTHY,
    State.WORKER_STATE_STARTING,
    State.WORKER_STATE_UNHEALTHY,
)

CASES = {
    "an answer makes any worker healthy and clears its error": (
        (STARTING, 2, "old", False, ""),
        ProbeOutcome(HEALTHY, 0, ""),
    ),
    "one failed probe of a healthy worker is counted, nothing more": (
        (HEALTHY, 0, "", False, "unreachable"),
        ProbeOutcome(HEALTHY, 1, ""),
    ),
    "the third failed probe makes it unhealthy": (
        (HEALTHY, 2, "", False, "unreachable"),
        ProbeOutcome(UNHEALTHY, 3, ""),
    ),
    "an external server says why it turned unhealthy": (
        (HEALTHY, 2, "", True, "no model"),
        ProbeOutcome(UNHEALTHY, 3, "no model"),
    ),
    "a starting worker that does not answer yet stays starting": (
        (STARTING, 0, "", False, "unreachable"),
        ProbeOutcome(STARTING, 0, ""),
    ),
    "an external server that never served says why at once": (
        (STARTING, 0, "", True, "no model"),
        ProbeOutcome(UNHEALTHY, 0, "no model", said_why=True),
    ),
    "the same problem again is no news": (
        (UNHEALTHY, 0, "no model", True, "no model"),
        ProbeOutcome(UNHEALTHY, 0, "no model"),
    ),
}


@pytest.mark.parametrize(("given", "expected"), CASES.values(), ids=CASES.keys())
def test_after_probe(given: tuple[int, int, str, bool, str], expected: ProbeOutcome) -> None:
    assert after_probe(*given) == expected
