"""A region's failed wake, remembered after its worker is gone.

A worker that failed CRASH_LOOP_RESTARTS starts in a row will not fix itself (a file that is
not a model, a wrong signature): a user must act, like Kubernetes' CrashLoopBackOff. A region
that scales to zero then goes back to zero, and its agent stops the worker, so the agent's
report no longer says why: this memory does, until the deployment's configuration or revision
changes or a later wake of the same revision serves.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass

from controlplane.ir.build import is_serving
from meshline.v1 import agent_pb2

# Failed starts in a row (without a stable run) that make a worker a crash loop.
CRASH_LOOP_RESTARTS = 3


def crash_looping(worker: agent_pb2.WorkerReport) -> bool:
    """The worker failed CRASH_LOOP_RESTARTS starts in a row and does not serve now: the one
    rule behind status Failed, the autoscaler's memory of a failed wake and a rollout's
    immediate rollback."""
    return worker.consecutive_failures >= CRASH_LOOP_RESTARTS and not is_serving(worker)


@dataclass(frozen=True)
class CrashLoop:
    """A worker of `revision` in a crash loop, as its agent reports it now."""

    revision: str
    worker_id: str
    error: str


@dataclass(frozen=True)
class FailedWake:
    """The region's last start of `crash.revision` crash-looped while the deployment's
    configuration had the fingerprint `spec`; `since`: when that worker was first seen
    crash-looping (the autoscaler stops waiting for that wake then)."""

    crash: CrashLoop
    spec: str
    since: float

    def describe(self) -> str:
        return f"the last cold start failed: worker {self.crash.worker_id} {self.crash.error}"


def remembered_failure(
    previous: FailedWake | None,
    revision: str,
    spec: str,
    crash_loops: Iterable[CrashLoop],
    serving_revisions: Set[str],
    now: float,
) -> FailedWake | None:
    """What the region remembers after this report: a worker of the current `revision`
    crash-looping now, else the previous failure while the revision and the configuration
    (`spec`) are the ones it failed with; nothing once a worker of the revision serves."""
    if revision in serving_revisions:
        return None  # a later wake succeeded
    live = next((c for c in crash_loops if c.revision == revision), None)
    same = previous is not None and (previous.crash.revision, previous.spec) == (revision, spec)
    if live is not None:
        if same and previous is not None and previous.crash.worker_id == live.worker_id:
            return FailedWake(live, spec, previous.since)  # the same loop, its latest error
        return FailedWake(live, spec, now)
    return previous if same else None
