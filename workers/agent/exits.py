"""Why a worker stopped and when it may start again: pure bookkeeping, one call per exit.

A run that lasted longer than STABLE_AFTER_S starts the count of consecutive failures over;
each short run doubles the wait before the next start (0.5 s, 1 s, 2 s, ... capped).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

MAX_RESTART_BACKOFF_S = 10.0
STABLE_AFTER_S = 30.0
FIRST_BACKOFF_S = 0.5


@dataclass(frozen=True)
class ExitNote:
    """What the agent records about one exit."""

    failures: int  # consecutive short-lived runs, this one included
    last_error: str
    backoff_s: float  # wait before the next start


def backoff_s(failures: int) -> float:
    return min(FIRST_BACKOFF_S * 2 ** (failures - 1), MAX_RESTART_BACKOFF_S)


def note_exit(failures: int, ran_s: float, returncode: int | None, reason: str) -> ExitNote:
    """`returncode` None: the worker never ran (no process, or its model could not be fetched)."""
    if returncode is None:
        failures += 1
        last_error = f"did not start ({ran_s:.1f}s): {reason}"
    else:
        failures = 1 if ran_s > STABLE_AFTER_S else failures + 1
        last_error = f"exited with code {returncode} after {ran_s:.1f}s: {reason}"
    return ExitNote(failures, last_error, backoff_s(failures))


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass(frozen=True)
class SharedExitNote:
    note: ExitNote
    isolate: bool  # this model took its shared worker down: it runs alone from now on


def note_shared_exit(
    failures: int,
    ran_s: float,
    deployment: str,
    shared_id: str,
    returncode: int | None,
    reason: str,
    culprits: frozenset[str],
) -> SharedExitNote:
    """A model's shared worker process died. The models its activity file names (loading, or
    in their first forward pass) took it down: each is charged like a crash of its own and is
    isolated from then on. Its neighbours are restarted at once, told which model it was, and
    not charged. A crash nobody is named for charges every model, as if each crashed. A
    process killed by a signal says so (its last log line says nothing about why)."""
    if returncode is not None and returncode < 0:
        reason = f"killed by {_signal_name(-returncode)}"
    if returncode == -signal.SIGKILL:
        # The kernel's out-of-memory killer (or an operator): the model that happened to be
        # loading is no more to blame than its neighbours.
        culprits = frozenset()
        reason += " (the out-of-memory killer, or an operator)"
    died = f"shared worker {shared_id} exited with code {returncode}: {reason}"
    if deployment in culprits:
        note = note_exit(failures, ran_s, returncode, reason)
        return SharedExitNote(
            ExitNote(
                note.failures,
                f"crashed its shared worker {shared_id} (exit code {returncode}) while loading "
                f"or running it: {reason}; it runs in a shared worker of its own from now on",
                note.backoff_s,
            ),
            isolate=True,
        )
    if culprits:
        named = ", ".join(f"'{c}'" for c in sorted(culprits))
        return SharedExitNote(
            ExitNote(
                failures,
                f"restarted: its {died}, taken down by model {named} (which now runs apart)",
                0.0,
            ),
            isolate=False,
        )
    note = note_exit(failures, ran_s, returncode, reason)
    return SharedExitNote(ExitNote(note.failures, f"its {died}", note.backoff_s), isolate=False)
