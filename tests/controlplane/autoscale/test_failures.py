"""What a region remembers of a wake that crash-looped: the table of `remembered_failure`."""

from __future__ import annotations

import pytest

from controlplane.autoscale.failures import (
    CRASH_LOOP_RESTARTS,
    CrashLoop,
    FailedWake,
    crash_looping,
    remembered_failure,
)
from meshline.v1 import agent_pb2

W1 = CrashLoop("r1", "w1", "exited with code 1 after 0.2s: not a model")
W1_LATER = CrashLoop("r1", "w1", "exited with code 1 after 0.3s: not a model")
W2 = CrashLoop("r1", "w2", "exited with code 1 after 0.2s: not a model")
OLD = CrashLoop("r0", "w0", "exited with code 1 after 0.2s: not a model")
SEEN = FailedWake(W1, "f1", since=10.0)
NOW = 20.0


@pytest.mark.parametrize(
    ("previous", "revision", "spec", "crashing", "serving", "expected"),
    [
        # First sighting of a crash loop of the current revision: remembered from now.
        (None, "r1", "f1", [W1], set(), FailedWake(W1, "f1", NOW)),
        # The same worker still crash-looping: its latest error, since its first sighting.
        (SEEN, "r1", "f1", [W1_LATER], set(), FailedWake(W1_LATER, "f1", 10.0)),
        # The worker is gone (the region went back to zero): remembered as it was.
        (SEEN, "r1", "f1", [], set(), SEEN),
        # A new wake's worker crash-loops again: that one, from now.
        (SEEN, "r1", "f1", [W2], set(), FailedWake(W2, "f1", NOW)),
        # A later wake of the same revision serves: forgotten.
        (SEEN, "r1", "f1", [], {"r1"}, None),
        (None, "r1", "f1", [W1], {"r1"}, None),
        # Another revision serving (an old worker during a rollout) proves nothing.
        (SEEN, "r1", "f1", [], {"r0"}, SEEN),
        # The revision or the configuration changed: forgotten.
        (SEEN, "r2", "f1", [], set(), None),
        (SEEN, "r1", "f2", [], set(), None),
        # ... unless the new configuration's worker crash-loops right away.
        (SEEN, "r1", "f2", [W1_LATER], set(), FailedWake(W1_LATER, "f2", NOW)),
        # Only the current revision's crash loop counts.
        (None, "r1", "f1", [OLD], set(), None),
        (None, "r1", "f1", [], set(), None),
    ],
)
def test_a_failed_wake_is_remembered_until_it_serves_or_changes(
    previous: FailedWake | None,
    revision: str,
    spec: str,
    crashing: list[CrashLoop],
    serving: set[str],
    expected: FailedWake | None,
) -> None:
    assert remembered_failure(previous, revision, spec, crashing, serving, NOW) == expected


HEALTHY = agent_pb2.WORKER_STATE_HEALTHY
STARTING = agent_pb2.WORKER_STATE_STARTING


@pytest.mark.parametrize(
    ("failures", "state", "routable", "looping"),
    [
        (CRASH_LOOP_RESTARTS, STARTING, False, True),
        (CRASH_LOOP_RESTARTS + 4, STARTING, False, True),
        (CRASH_LOOP_RESTARTS - 1, STARTING, False, False),
        # Serving now (the count resets only after a stable run): not a crash loop.
        (CRASH_LOOP_RESTARTS, HEALTHY, True, False),
        # Healthy but not yet routed by its gateway: does not serve, still a loop.
        (CRASH_LOOP_RESTARTS, HEALTHY, False, True),
    ],
)
def test_a_crash_loop_is_that_many_failed_starts_in_a_row_not_serving(
    failures: int, state: agent_pb2.WorkerState, routable: bool, looping: bool
) -> None:
    worker = agent_pb2.WorkerReport(
        consecutive_failures=failures,
        last_error="exited with code 1",
        state=state,
        gateway_routable=routable,
    )
    assert crash_looping(worker) == looping


def test_the_message_names_the_worker_and_its_error() -> None:
    assert SEEN.describe() == (
        "the last cold start failed: worker w1 exited with code 1 after 0.2s: not a model"
    )
