"""The agent's decision core as a table: workers, desired tracks, time → actions, in order."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from meshline.keys import TrackKey
from workers.agent.decide import (
    Action,
    Conditions,
    Drain,
    MoveTrack,
    NoteExit,
    Restart,
    Retire,
    Start,
    Want,
    WorkerFacts,
    decide,
)

MAIN = TrackKey("production", "d", "")
LEG = TrackKey("production", "d", "v2")
V1 = TrackKey("production", "d", "v1")
OTHER = TrackKey("production", "e", "")
NOW = 100.0
MAX_DRAIN_S = 60.0


def serving(worker_id: str, key: TrackKey = MAIN, revision: str = "r1") -> WorkerFacts:
    return WorkerFacts(worker_id, key, revision, healthy=True, serving=True)


def starting(worker_id: str, key: TrackKey = MAIN, revision: str = "r1") -> WorkerFacts:
    return WorkerFacts(worker_id, key, revision)


def exited(worker_id: str, noted: bool = False, restart_at: float = 0.0) -> WorkerFacts:
    return WorkerFacts(
        worker_id, MAIN, "r1", running=False, exit_noted=noted, restart_at=restart_at
    )


def draining(worker_id: str, since: float, running: bool = True) -> WorkerFacts:
    return WorkerFacts(worker_id, MAIN, "r1", running=running, draining=True, drain_started=since)


@dataclass(frozen=True)
class Case:
    workers: tuple[WorkerFacts, ...]
    desired: dict[TrackKey, Want]
    expected: tuple[Action, ...]
    connected: bool = True


CASES = {
    "nothing desired, nothing running": Case((), {}, ()),
    "missing workers are started": Case((), {MAIN: Want("r1", 2)}, (Start(MAIN), Start(MAIN))),
    "enough fresh workers: nothing to do": Case((serving("a"),), {MAIN: Want("r1", 1)}, ()),
    "a new revision starts next to the old one": Case(
        (serving("a"),), {MAIN: Want("r2", 1)}, (Start(MAIN),)
    ),
    "a healthy replacement the gateway does not route yet keeps the old one": Case(
        (serving("a"), WorkerFacts("b", MAIN, "r2", healthy=True)), {MAIN: Want("r2", 1)}, ()
    ),
    "a serving replacement drains the old one": Case(
        (serving("a"), serving("b", revision="r2")), {MAIN: Want("r2", 1)}, (Drain("a"),)
    ),
    "surplus drains the unhealthy worker first": Case(
        (serving("a"), starting("b")), {MAIN: Want("r1", 1)}, (Drain("b"),)
    ),
    "a surplus worker that exited is drained and retired in one pass": Case(
        (serving("a"), exited("b")), {MAIN: Want("r1", 1)}, (Drain("b"), Retire("b"))
    ),
    "scaled to zero: every worker drains": Case(
        (serving("a"),), {MAIN: Want("r1", 0)}, (Drain("a"),)
    ),
    "zero wanted of a new revision: the old one drains": Case(
        (serving("a"),), {MAIN: Want("r2", 0)}, (Drain("a"),)
    ),
    "a track no longer desired drains": Case((serving("a"),), {}, (Drain("a"),)),
    "an overdue drain ends while the control plane is reachable": Case(
        (draining("a", since=NOW - MAX_DRAIN_S - 1),), {}, (Retire("a"),)
    ),
    "an overdue drain waits while the control plane is unreachable": Case(
        (draining("a", since=NOW - MAX_DRAIN_S - 1),), {}, (), connected=False
    ),
    "a drain within its time waits for the release": Case((draining("a", since=NOW - 1),), {}, ()),
    "a draining worker that exited is retired": Case(
        (draining("a", since=NOW, running=False),), {}, (Retire("a"),), connected=False
    ),
    "an exit is noted first, with no restart in the same pass": Case(
        (exited("a"),), {MAIN: Want("r1", 1)}, (NoteExit("a"),)
    ),
    "a noted exit waits for its backoff": Case(
        (exited("a", noted=True, restart_at=NOW + 1),), {MAIN: Want("r1", 1)}, ()
    ),
    "a noted exit restarts once its backoff passed": Case(
        (exited("a", noted=True, restart_at=NOW),), {MAIN: Want("r1", 1)}, (Restart("a"),)
    ),
    "promoting a canary swaps the workers' tracks": Case(
        (serving("a"), serving("b", key=LEG, revision="r2")),
        {MAIN: Want("r2", 1), V1: Want("r1", 1)},
        (MoveTrack("b", MAIN), MoveTrack("a", V1)),
    ),
    "a worker its own track still wants does not move": Case(
        (serving("a"),), {MAIN: Want("r1", 1), LEG: Want("r1", 1)}, (Start(LEG),)
    ),
    "a worker of another deployment never moves": Case(
        (serving("a"),), {OTHER: Want("r1", 1)}, (Start(OTHER), Drain("a"))
    ),
    "a moved worker does not serve its new track yet: the old workers stay": Case(
        (serving("s"), serving("m", key=LEG, revision="r2")),
        {MAIN: Want("r2", 1)},
        (MoveTrack("m", MAIN),),
    ),
    "a draining worker never moves": Case(
        (WorkerFacts("a", LEG, "r2", draining=True, drain_started=NOW),),
        {MAIN: Want("r2", 1)},
        (Start(MAIN),),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_decide(case: Case) -> None:
    conditions = Conditions(connected=case.connected, max_drain_s=MAX_DRAIN_S)
    assert decide(case.workers, case.desired, NOW, conditions) == case.expected
