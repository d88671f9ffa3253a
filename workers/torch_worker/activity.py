"""The "last activity" file of a shared worker: which model(s) it is doing something risky with.

A model that segfaults takes its whole process down; no in-process guard can stop that. So before
each risky call (loading a model, a model's first forward pass) the worker writes the model's name
here, and clears it once the call returned. If the process dies, its agent reads the file: the
models it names took the process down (`--activity-file`). Writes are atomic (a whole file
replaces the last), and not synced: the file must outlive the process, not the machine.

    {"pid": 4242, "risky": [{"model": "a", "version": "1", "activity": "load"}]}
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOAD = "load"
FIRST_FORWARD = "first_forward"


@dataclass(frozen=True)
class Activity:
    model: str
    version: str
    activity: str


def activity_document(pid: int, risky: list[Activity]) -> dict[str, Any]:
    return {
        "pid": pid,
        "risky": [{"model": a.model, "version": a.version, "activity": a.activity} for a in risky],
    }


def read_activity(path: Path) -> list[Activity]:
    """The models an activity file names (what the agent reads after a crash)."""
    document = json.loads(path.read_text())
    return [Activity(a["model"], a["version"], a["activity"]) for a in document["risky"]]


class ActivityLog:
    """Keeps the file naming every model in a risky call right now; no file path: does nothing."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._risky: list[Activity] = []
        if path is not None:
            self._write()  # a stale file from an earlier process must not blame anyone

    @contextmanager
    def risky(self, model: str, version: str, activity: str) -> Iterator[None]:
        """Name the model in the file for the duration of the block."""
        entry = Activity(model, version, activity)
        self._risky.append(entry)
        self._write()
        try:
            yield
        finally:
            self._risky.remove(entry)
            self._write()

    def _write(self) -> None:
        if self.path is None:
            return
        partial = self.path.with_name(f".{self.path.name}.partial")
        partial.write_text(json.dumps(activity_document(os.getpid(), self._risky)))
        os.replace(partial, self.path)
