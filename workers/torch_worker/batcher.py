"""Dynamic batching and request priority, as Triton's dynamic batcher does them.

Requests that passed every per-request check (DataPlane) wait in one queue on the event loop, one
FIFO per priority level. A batch is formed from the head of the queue (highest level first) and
takes the following requests with the same trailing shapes and dtypes, up to `max_batch_size`
rows. It runs when it is full, when it reaches a preferred size, when the oldest queued request
has waited `max_batch_delay`, or at once when no delay is set; one `run_in_executor` per batch
concatenates the inputs, runs the model and splits the outputs back as views. If the merged pass
fails, the same thread re-runs the batch's requests one by one, so only the bad one fails.

Scheduling is event driven (a request arrives, a batch finishes, the delay timer fires): no
polling task, no locks, since everything except the forward pass runs on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from workers.oip.errors import InvalidInputError, NotReadyError
from workers.oip.signature import WILDCARD, Signature, format_shape
from workers.torch_worker.runtime import TorchRuntime, aligned_empty

log = logging.getLogger(__name__)

Outputs = dict[str, np.ndarray]

# The loop may run a timer a hair before its time (clock resolution); count that as "due".
CLOCK_SLACK_S = 1e-4


@dataclass(frozen=True)
class BatchPolicy:
    """The scheduling flags, checked by config.py; delay in seconds here."""

    max_batch_size: int = 1
    max_batch_delay_s: float = 0.0
    preferred_batch_sizes: frozenset[int] = frozenset()
    priority_levels: int = 0
    default_priority_level: int = 0  # 0 = the lowest level
    instances: int = 1

    @property
    def batching(self) -> bool:
        return self.max_batch_size > 1

    @property
    def queued(self) -> bool:
        """Whether requests go through the Batcher at all (batching or priority is on)."""
        return self.batching or self.priority_levels > 0

    def unbatched(self) -> BatchPolicy:
        """The same policy with merging off (priority and instances kept)."""
        return BatchPolicy(
            priority_levels=self.priority_levels,
            default_priority_level=self.default_priority_level,
            instances=self.instances,
        )

    def level_index(self, priority: Any) -> int:
        """Queue index (0 = highest) of a request's raw priority (parameter or header value).

        None or 0 means the default level. Raises InvalidInputError naming the range.
        """
        levels = self.priority_levels
        if levels == 0:
            return 0  # priority is ignored, as Triton does without priority levels
        default = self.default_priority_level or levels
        value = _as_int(priority)
        if value is None or not 0 <= value <= levels:
            raise InvalidInputError(
                f"priority {priority} is out of range 0..{levels}: 1 is the highest level, "
                f"{levels} the lowest, 0 the default ({default})"
            )
        return (value or default) - 1


def _as_int(priority: Any) -> int | None:
    if priority is None:
        return 0
    if isinstance(priority, bool):
        return None
    if isinstance(priority, int):
        return priority
    if isinstance(priority, str | bytes):
        try:
            return int(priority.strip())
        except ValueError:
            return None
    return None


def batching_blocker(signature: Signature) -> str:
    """Why requests to this signature cannot be concatenated along dim 0 ("" when they can)."""
    for kind, specs in (("input", signature.inputs), ("output", signature.outputs)):
        for spec in specs:
            if not spec.shape or spec.shape[0] != WILDCARD:
                return (
                    f"{kind} '{spec.name}' has shape {format_shape(spec.shape)}, and batching "
                    "needs every input and output shape to start with -1"
                )
    return ""


class BatchObserver(Protocol):
    """Where the batcher reports its work (WorkerMetrics in the worker)."""

    def observe_batch(self, requests: int, rows: int) -> None: ...

    def set_queued(self, count: int) -> None: ...


class NullObserver:
    def observe_batch(self, requests: int, rows: int) -> None:
        pass

    def set_queued(self, count: int) -> None:
        pass


@dataclass(eq=False)
class _Pending:
    """One queued request: inputs in signature order, how it may be merged, and its caller."""

    arrays: list[np.ndarray]
    rows: int
    key: Hashable | None  # trailing shapes + dtypes; None = never merged
    level: int
    enqueued: float
    future: asyncio.Future[Outputs] = field(repr=False)
    queued: bool = True


def merge_key(arrays: Sequence[np.ndarray]) -> tuple[int, Hashable | None]:
    """Rows of a request and the key batch-mates must share; key None when it cannot merge."""
    if not arrays or arrays[0].ndim == 0:
        return 1, None
    rows = arrays[0].shape[0]
    if rows == 0 or any(a.ndim == 0 or a.shape[0] != rows for a in arrays):
        return rows, None
    return rows, tuple((a.shape[1:], a.dtype.str) for a in arrays)


@dataclass(frozen=True)
class BatchResult:
    """Per request, its outputs or its error; `fallback` when the merged pass was not used."""

    results: list[Outputs | BaseException]
    fallback: bool


def run_batch(runtime: TorchRuntime, batch: Sequence[Sequence[np.ndarray]]) -> BatchResult:
    """On the inference thread: one merged forward pass, or one pass per request if it fails."""
    if len(batch) == 1:
        return BatchResult([_run_one(runtime, batch[0])], fallback=False)
    rows = [parts[0].shape[0] for parts in batch]
    total = sum(rows)
    try:
        merged = [_concatenate(parts) for parts in zip(*batch, strict=True)]
        outputs = runtime.infer_sync(merged)
    except Exception as exc:
        log.info("merged pass of %d requests failed, running them one by one: %s", len(batch), exc)
    else:
        if all(a.ndim > 0 and a.shape[0] == total for a in outputs.values()):
            results: list[Outputs | BaseException] = []
            start = 0
            for n in rows:
                results.append({name: a[start : start + n] for name, a in outputs.items()})
                start += n
            return BatchResult(results, fallback=False)
        log.warning(
            "the model's outputs do not all have the batch's %d rows; running its requests one "
            "by one",
            total,
        )
    return BatchResult([_run_one(runtime, parts) for parts in batch], fallback=True)


def _run_one(runtime: TorchRuntime, arrays: Sequence[np.ndarray]) -> Outputs | BaseException:
    try:
        return runtime.infer_sync(arrays)
    except Exception as exc:
        return exc


def _concatenate(parts: Sequence[np.ndarray]) -> np.ndarray:
    """One copy, straight into torch-allocated (aligned) memory."""
    first = parts[0]
    out = aligned_empty((sum(p.shape[0] for p in parts), *first.shape[1:]), first.dtype)
    np.concatenate(parts, axis=0, out=out)
    return out


class Batcher:
    """The queue in front of the runtime's inference threads (see the module docstring)."""

    def __init__(
        self,
        runtime: TorchRuntime,
        policy: BatchPolicy,
        observer: BatchObserver | None = None,
    ) -> None:
        self.runtime = runtime
        self.policy = policy
        self._observer: BatchObserver = observer or NullObserver()
        self._levels: list[deque[_Pending]] = [
            deque() for _ in range(max(1, policy.priority_levels))
        ]
        self._count = 0
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._closed = False

    @property
    def queued(self) -> int:
        """Requests waiting for a forward pass."""
        return self._count

    @property
    def running(self) -> int:
        """Batches on the inference threads now."""
        return self._running

    async def infer(self, arrays: Sequence[np.ndarray], level: int = 0) -> Outputs:
        """Queue one checked request (inputs in signature order) and wait for its outputs."""
        if self._closed:
            raise NotReadyError("the worker is shutting down")
        loop = asyncio.get_running_loop()
        rows, key = merge_key(arrays)
        entry = _Pending(list(arrays), rows, key, level, loop.time(), loop.create_future())
        self._levels[level].append(entry)
        self._count += 1
        self._observer.set_queued(self._count)
        self._schedule()
        try:
            return await entry.future
        except asyncio.CancelledError:
            # The caller gave up (deadline, disconnect): leave the queue, spare its batch-mates.
            if entry.queued:
                self._unqueue(entry)
                self._schedule()
            raise

    def close(self) -> None:
        """Fail what is still queued; batches already running finish."""
        self._closed = True
        self._disarm()
        for queue in self._levels:
            while queue:
                entry = queue.popleft()
                entry.queued = False
                if not entry.future.done():
                    entry.future.set_exception(NotReadyError("the worker is shutting down"))
        self._count = 0
        self._observer.set_queued(0)

    # ---- scheduling (event loop only) -----------------------------------------------------

    def _schedule(self) -> None:
        """Start every batch that may start now; arm the delay timer for the rest."""
        while self._count and self._running < self.policy.instances:
            batch, ready = self._form()
            if not ready:
                self._arm(self._oldest() + self.policy.max_batch_delay_s)
                return
            self._dispatch(batch)
        self._disarm()

    def _entries(self) -> Iterator[_Pending]:
        for queue in self._levels:
            yield from queue

    def _form(self) -> tuple[list[_Pending], bool]:
        """The next batch from the head of the queue, and whether it should run now."""
        entries = self._entries()
        head = next(entries)
        limit = self.policy.max_batch_size
        if head.key is None or head.rows >= limit:
            return [head], True  # runs alone; an oversized request is not rejected
        batch = [head]
        rows = head.rows
        for entry in entries:
            if entry.key != head.key:
                continue  # other trailing shapes: a later batch
            if rows + entry.rows > limit:
                return batch, True  # full: the next one does not fit
            batch.append(entry)
            rows += entry.rows
            if rows == limit:
                return batch, True
        delay = self.policy.max_batch_delay_s
        now = asyncio.get_running_loop().time()
        if delay <= 0 or now + CLOCK_SLACK_S >= self._oldest() + delay:
            return batch, True
        preferred = self.policy.preferred_batch_sizes
        if preferred:
            # The largest prefix (requests keep their order) whose rows are a preferred size.
            best = 0
            total = 0
            for index, entry in enumerate(batch, start=1):
                total += entry.rows
                if total in preferred:
                    best = index
            if best:
                return batch[:best], True
        return batch, False

    def _oldest(self) -> float:
        return min(queue[0].enqueued for queue in self._levels if queue)

    def _unqueue(self, entry: _Pending) -> None:
        self._levels[entry.level].remove(entry)
        entry.queued = False
        self._count -= 1
        self._observer.set_queued(self._count)

    def _dispatch(self, batch: list[_Pending]) -> None:
        for entry in batch:
            self._unqueue(entry)
        self._running += 1
        # Counted once, when the batch is formed (a failed merged pass re-run request by
        # request is not counted again: requests / passes stays the average batch formed).
        self._observer.observe_batch(len(batch), sum(e.rows for e in batch))
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Pending]) -> None:
        try:
            outcome = await self.runtime.run_in_executor(
                run_batch, self.runtime, [e.arrays for e in batch]
            )
            results = outcome.results
        except asyncio.CancelledError:
            for entry in batch:
                entry.future.cancel()
            raise
        except Exception as exc:  # the executor is gone (shutdown)
            results = [exc] * len(batch)
        finally:
            self._running -= 1
        for entry, result in zip(batch, results, strict=True):
            if entry.future.done():
                continue  # its caller was cancelled
            if isinstance(result, BaseException):
                entry.future.set_exception(result)
            else:
                entry.future.set_result(result)
        if not self._closed:
            self._schedule()

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            if self._timer_at == when:
                return
            self._timer.cancel()
        self._timer_at = when
        self._timer = asyncio.get_running_loop().call_at(when, self._on_timer)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        self._schedule()
