"""Which workers to start, move, drain, retire or restart: the agent's pure decision core.

No I/O and no clock: `decide` takes a snapshot of the workers, the desired tracks and the time,
and returns the actions, in order; `Supervisor` carries them out. The rules:

- A workload is one track of a deployment in an environment (a `TrackKey`); its workers of
  the desired revision are fresh, the others stale.
- Moves first: a worker whose own track no longer wants its revision (track gone, or another
  revision there) moves to a track of the same deployment that wants exactly its revision and
  lacks workers (promoting a canary swaps versions between tracks: the processes already serve
  the right models). A moved worker is not serving until the gateway routes its new track.
- Then per track: start the missing fresh workers; drain surplus fresh ones, unhealthy first;
  drain every stale one once as many fresh ones serve as are wanted (make-before-break).
- Then per worker: drain one whose track is no longer desired; retire a draining one that is
  no longer running, or overdue while the control plane is reachable (without it a draining
  worker may still be in the gateway's last config); note the exit of a worker that stopped,
  and restart it once its backoff has passed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from meshline.keys import TrackKey


@dataclass(frozen=True)
class WorkerFacts:
    """One worker as the decision sees it."""

    worker_id: str
    key: TrackKey
    revision: str
    healthy: bool = False
    serving: bool = False  # healthy, and the gateway routes to it (or there is no gateway)
    running: bool = True  # its process (or its model's download) is alive
    draining: bool = False
    drain_started: float = 0.0
    exit_noted: bool = False  # the current exit's reason and backoff are recorded
    restart_at: float = 0.0  # when a stopped worker may start again


@dataclass(frozen=True)
class Want:
    """What one desired track asks for."""

    revision: str
    workers: int


@dataclass(frozen=True)
class Conditions:
    connected: bool  # the control plane can confirm drains now
    max_drain_s: float


@dataclass(frozen=True)
class MoveTrack:
    worker_id: str
    key: TrackKey


@dataclass(frozen=True)
class Start:
    key: TrackKey


@dataclass(frozen=True)
class Drain:
    worker_id: str


@dataclass(frozen=True)
class Retire:
    worker_id: str


@dataclass(frozen=True)
class NoteExit:
    worker_id: str


@dataclass(frozen=True)
class Restart:
    worker_id: str


Action = MoveTrack | Start | Drain | Retire | NoteExit | Restart


def decide(
    workers: Sequence[WorkerFacts],
    desired: Mapping[TrackKey, Want],
    now: float,
    conditions: Conditions,
) -> tuple[Action, ...]:
    """The actions that bring `workers` towards `desired`, in the order to carry them out."""
    pool = {w.worker_id: w for w in workers}  # as the actions leave them
    actions: list[Action] = []

    def drain(worker: WorkerFacts) -> WorkerFacts:
        drained = replace(worker, draining=True, drain_started=now)
        pool[worker.worker_id] = drained
        actions.append(Drain(worker.worker_id))
        return drained

    for key, want in desired.items():
        for worker_id in _movers(pool, desired, key, want):
            pool[worker_id] = replace(pool[worker_id], key=key, serving=False)
            actions.append(MoveTrack(worker_id, key))

    for key, want in desired.items():
        current = [w for w in pool.values() if w.key == key and not w.draining]
        fresh = [w for w in current if w.revision == want.revision]
        stale = [w for w in current if w.revision != want.revision]
        actions += [Start(key)] * max(0, want.workers - len(fresh))
        for worker in sorted(fresh, key=lambda w: w.healthy)[: max(0, len(fresh) - want.workers)]:
            drain(worker)
        if stale and sum(1 for w in fresh if w.serving) >= want.workers:
            for worker in stale:
                drain(worker)

    for worker in list(pool.values()):
        if worker.key not in desired and not worker.draining:
            worker = drain(worker)
        if worker.draining:
            overdue = now - worker.drain_started > conditions.max_drain_s
            if not worker.running or (overdue and conditions.connected):
                actions.append(Retire(worker.worker_id))
        elif not worker.running:
            if not worker.exit_noted:
                actions.append(NoteExit(worker.worker_id))
            elif now >= worker.restart_at:
                actions.append(Restart(worker.worker_id))
    return tuple(actions)


def _movers(
    pool: Mapping[str, WorkerFacts], desired: Mapping[TrackKey, Want], key: TrackKey, want: Want
) -> list[str]:
    """Workers that move to track `key`: only ones their own track no longer wants."""
    have = sum(
        1 for w in pool.values() if w.key == key and not w.draining and w.revision == want.revision
    )
    out = []
    for worker in pool.values():
        if have >= want.workers:
            break
        home = desired.get(worker.key)
        if (
            worker.draining
            or worker.key == key
            or worker.revision != want.revision
            or worker.key.deployment_key != key.deployment_key
            or (home is not None and home.revision == worker.revision)
        ):
            continue
        out.append(worker.worker_id)
        have += 1
    return out
