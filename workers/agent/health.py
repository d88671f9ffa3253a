"""What one health probe's answer does to a worker's state: pure, one call per probe.

A busy worker may answer late, so a healthy one turns unhealthy only after a run of failed
probes; one that never served stays where it is, except an external server, whose problem is
the only reason status can give for it never serving.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshline.v1 import agent_pb2

State = agent_pb2.WorkerState

UNHEALTHY_AFTER_FAILED_PROBES = 3  # a busy worker may answer late; a dead one is seen at once


@dataclass(frozen=True)
class ProbeOutcome:
    state: int
    failed_probes: int
    last_error: str
    # An external server's new problem: report it now, and nothing else (no load read).
    said_why: bool = False


def after_probe(
    state: int, failed_probes: int, last_error: str, external: bool, problem: str
) -> ProbeOutcome:
    """`problem`: what keeps the worker from serving, or the empty string (it serves)."""
    if not problem:
        return ProbeOutcome(State.WORKER_STATE_HEALTHY, 0, "")
    if state == State.WORKER_STATE_HEALTHY:
        failed_probes += 1
        if failed_probes >= UNHEALTHY_AFTER_FAILED_PROBES:
            return ProbeOutcome(
                State.WORKER_STATE_UNHEALTHY, failed_probes, problem if external else last_error
            )
        return ProbeOutcome(state, failed_probes, last_error)
    if external and last_error != problem:
        return ProbeOutcome(State.WORKER_STATE_UNHEALTHY, failed_probes, problem, said_why=True)
    return ProbeOutcome(state, failed_probes, last_error)
