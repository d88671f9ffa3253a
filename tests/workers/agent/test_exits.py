"""Exit bookkeeping as a table: consecutive failures, the reason recorded, the backoff."""

from __future__ import annotations

import pytest

from workers.agent.exits import ExitNote, note_exit

CASES = {
    "a worker that never ran": (
        (0, 1.25, None, "no such file"),
        ExitNote(1, "did not start (1.2s): no such file", 0.5),
    ),
    "a short run counts one more failure and doubles the wait": (
        (2, 3.0, 1, "Traceback"),
        ExitNote(3, "exited with code 1 after 3.0s: Traceback", 2.0),
    ),
    "a stable run starts the count over": (
        (5, 31.0, -9, "killed"),
        ExitNote(1, "exited with code -9 after 31.0s: killed", 0.5),
    ),
    "the wait is capped": (
        (9, 0.5, 1, "x"),
        ExitNote(10, "exited with code 1 after 0.5s: x", 10.0),
    ),
    "a start that failed counts even after a long wait": (
        (3, 40.0, None, "cannot fetch the model"),
        ExitNote(4, "did not start (40.0s): cannot fetch the model", 4.0),
    ),
}


@pytest.mark.parametrize(("given", "expected"), CASES.values(), ids=CASES.keys())
def test_note_exit(given: tuple[int, float, int | None, str], expected: ExitNote) -> None:
    failures, ran_s, returncode, reason = given
    assert note_exit(failures, ran_s, returncode, reason) == expected
