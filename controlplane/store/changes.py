"""The store's change feed: listeners called after each commit, and awaitable revisions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from controlplane.store.resources import ResourceKey

log = logging.getLogger(__name__)

# What happened to one resource in a committed change.
CREATED = "created"
CONFIGURED = "configured"
UNCHANGED = "unchanged"
DELETED = "deleted"


@dataclass(frozen=True)
class Change:
    """One resource touched by a commit; `action` is created, configured or deleted."""

    key: ResourceKey
    action: str


@dataclass(frozen=True)
class ChangeEvent:
    """Everything one commit changed; `revision` is the store revision after it."""

    revision: int
    changes: tuple[Change, ...]


Listener = Callable[[ChangeEvent], None]


class ChangeFeed:
    """Fan-out of committed changes to callbacks and to coroutines waiting for a revision.

    Listeners run synchronously right after the commit, in the committing thread: they should
    only note the change (set an event, schedule work) and return.
    """

    def __init__(self, revision: int) -> None:
        self._revision = revision
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._waiters: set[asyncio.Future[int]] = set()

    @property
    def revision(self) -> int:
        return self._revision

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` after every commit; returns a function that removes it."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def publish(self, event: ChangeEvent) -> None:
        with self._lock:
            self._revision = event.revision
            listeners = list(self._listeners)
            waiters = list(self._waiters)
        for waiter in waiters:
            # RuntimeError: its loop is closed, so nobody waits any more.
            with contextlib.suppress(RuntimeError):
                waiter.get_loop().call_soon_threadsafe(_wake, waiter)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                log.exception("store change listener %r failed", listener)

    async def wait_for_revision(self, after: int) -> int:
        """Return the current revision once it is greater than `after`."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._revision > after:
                    return self._revision
                waiter: asyncio.Future[int] = loop.create_future()
                self._waiters.add(waiter)
            try:
                await waiter
            finally:
                with self._lock:
                    self._waiters.discard(waiter)


def _wake(waiter: asyncio.Future[int]) -> None:
    if not waiter.done():
        waiter.set_result(0)
