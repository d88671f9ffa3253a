"""The Batcher in process, on real TorchScript models (the demo MLP and tiny scripted ones).

Order-sensitive tests hold the only inference thread with a gate (a function waiting on a
threading.Event, run on the runtime's own executor), queue requests behind it, then open the gate:
what is asserted is which requests share a forward pass and in which order passes run, never how
long anything takes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.workers.torch_worker.helpers import assert_matches_batched, images
from workers.demo import DEMO_SIGNATURE
from workers.oip.errors import InvalidInputError, ModelExecutionError
from workers.oip.signature import Signature
from workers.torch_worker.batcher import Batcher, BatchPolicy, batching_blocker, merge_key
from workers.torch_worker.dataplane import DataPlane, InferenceRequest, InferInput
from workers.torch_worker.runtime import TorchRuntime

GUARD_S = 30.0  # only ever reached when something hangs: a failure, never a timing assertion

ANY_WIDTH = Signature.from_dict(
    {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, -1]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, -1]}],
    }
)


class Picky(torch.nn.Module):
    """Doubles its input, and raises when any value is the sentinel -1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x == -1.0).any()):
            raise RuntimeError("poisoned input")
        return x * 2


@dataclass
class Recorder:
    """A BatchObserver that keeps every forward pass it is told about."""

    batches: list[tuple[int, int]] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)

    def observe_batch(self, requests: int, rows: int) -> None:
        self.batches.append((requests, rows))

    def set_queued(self, count: int) -> None:
        self.queued.append(count)


@contextmanager
def runtime_for(path: Path, signature: Signature, instances: int = 1) -> Iterator[TorchRuntime]:
    runtime = TorchRuntime(path, signature, instances=instances)
    runtime.load()
    try:
        yield runtime
    finally:
        runtime.close()


def scripted(module: torch.nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module), str(path))
    return path


@pytest.fixture
def picky(tmp_path: Path) -> Iterator[TorchRuntime]:
    with runtime_for(scripted(Picky(), tmp_path / "picky.pt"), ANY_WIDTH) as runtime:
        yield runtime


@asynccontextmanager
async def held(runtime: TorchRuntime) -> AsyncIterator[Callable[[], None]]:
    """Occupy one inference thread until the yielded `release()` is called (or the block ends)."""
    started = threading.Event()
    gate = threading.Event()

    def hold() -> None:
        started.set()
        gate.wait(GUARD_S)

    blocker = asyncio.ensure_future(runtime.run_in_executor(hold))
    await asyncio.get_running_loop().run_in_executor(None, started.wait, GUARD_S)
    try:
        yield gate.set
    finally:
        gate.set()
        await blocker


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until `condition` holds (it only depends on event-loop state)."""
    async with asyncio.timeout(GUARD_S):
        while not condition():
            await asyncio.sleep(0)


def spawn(
    coro: Awaitable[dict[str, np.ndarray]], tag: str, order: list[str]
) -> asyncio.Task[dict[str, np.ndarray]]:
    """A task that records `tag` in `order` when its request is answered."""

    async def run() -> dict[str, np.ndarray]:
        result = await coro
        order.append(tag)
        return result

    return asyncio.ensure_future(run())


def rows(n: int, width: int = 4, value: float = 1.0) -> np.ndarray:
    return np.full((n, width), value, dtype=np.float32)


# ---- merging ---------------------------------------------------------------------------------


async def test_concurrent_requests_share_passes_and_each_gets_its_rows(
    demo_model: Path, reference: Callable[[np.ndarray], np.ndarray]
) -> None:
    signature = Signature.from_dict(DEMO_SIGNATURE)
    recorder = Recorder()
    with runtime_for(demo_model, signature) as runtime:
        batcher = Batcher(runtime, BatchPolicy(16, 0.02), recorder)
        inputs = [images(1 + i % 3, seed=100 + i) for i in range(32)]
        async with asyncio.timeout(GUARD_S):
            results = await asyncio.gather(*(batcher.infer([x]) for x in inputs))
    for x, out in zip(inputs, results, strict=True):
        assert_matches_batched(out["output"], reference(x))
    assert sum(n for n, _ in recorder.batches) == 32
    assert sum(r for _, r in recorder.batches) == sum(len(x) for x in inputs)
    assert max(n for n, _ in recorder.batches) > 1, recorder.batches
    assert all(r <= 16 for _, r in recorder.batches), recorder.batches
    assert recorder.queued[-1] == 0 and batcher.queued == 0


async def test_outputs_are_views_of_one_pass(picky: TorchRuntime) -> None:
    batcher = Batcher(picky, BatchPolicy(8, 0.02))
    a, b = await asyncio.gather(
        batcher.infer([rows(2, value=1)]), batcher.infer([rows(3, value=2)])
    )
    np.testing.assert_array_equal(a["y"], rows(2, value=2))
    np.testing.assert_array_equal(b["y"], rows(3, value=4))
    assert a["y"].base is not None and a["y"].base is b["y"].base  # split, not copied


async def test_requests_group_by_trailing_shape_and_dtype(picky: TorchRuntime) -> None:
    recorder = Recorder()
    batcher = Batcher(picky, BatchPolicy(16, 0.0), recorder)
    order: list[str] = []
    async with held(picky):
        first = spawn(batcher.infer([rows(1)]), "first", order)
        await until(lambda: batcher.running == 1)  # dispatched: waiting for the thread
        widths = {"a": 3, "b": 5, "c": 3, "d": 5, "e": 3}
        tasks = {
            tag: spawn(batcher.infer([rows(1, w, 1.5)]), tag, order) for tag, w in widths.items()
        }
        await until(lambda: batcher.queued == 5)
    await asyncio.gather(first, *tasks.values())
    assert recorder.batches == [(1, 1), (3, 3), (2, 2)]
    assert order == ["first", "a", "c", "e", "b", "d"]
    for tag, width in widths.items():
        np.testing.assert_array_equal(tasks[tag].result()["y"], rows(1, width, 3.0))


def test_merge_key() -> None:
    assert merge_key([rows(2, 3), rows(2, 5)]) == (2, (((3,), "<f4"), ((5,), "<f4")))
    assert merge_key([rows(2, 3)]) != merge_key([rows(2, 3).astype(np.float64)])
    assert merge_key([rows(2, 3), rows(3, 3)])[1] is None  # inputs disagree on rows: alone
    assert merge_key([np.float32(1.0) * np.ones(())])[1] is None


async def test_oversized_request_runs_alone(picky: TorchRuntime) -> None:
    recorder = Recorder()
    batcher = Batcher(picky, BatchPolicy(4, 0.02), recorder)
    big, small = await asyncio.gather(batcher.infer([rows(9)]), batcher.infer([rows(1)]))
    assert big["y"].shape == (9, 4) and small["y"].shape == (1, 4)
    assert sorted(recorder.batches) == [(1, 1), (1, 9)]


async def test_full_or_preferred_batch_goes_without_waiting_for_the_delay(
    picky: TorchRuntime,
) -> None:
    # A delay far longer than the guard: only "full" or "preferred size" can start these batches.
    long = 10 * GUARD_S
    recorder = Recorder()
    full = Batcher(picky, BatchPolicy(4, long), recorder)
    async with asyncio.timeout(GUARD_S):
        await asyncio.gather(*(full.infer([rows(1)]) for _ in range(4)))
    preferred = Batcher(picky, BatchPolicy(16, long, frozenset({3})), recorder)
    async with asyncio.timeout(GUARD_S):
        await asyncio.gather(*(preferred.infer([rows(1)]) for _ in range(3)))
    assert recorder.batches == [(4, 4), (3, 3)]


# ---- errors ----------------------------------------------------------------------------------


async def test_model_error_in_a_merged_batch_fails_only_its_request(picky: TorchRuntime) -> None:
    recorder = Recorder()
    batcher = Batcher(picky, BatchPolicy(16, 0.0), recorder)
    order: list[str] = []
    async with held(picky):
        first = spawn(batcher.infer([rows(1)]), "first", order)
        await until(lambda: batcher.running == 1)
        good = [spawn(batcher.infer([rows(2, value=i)]), f"g{i}", order) for i in range(3)]
        bad = spawn(batcher.infer([rows(1, value=-1)]), "bad", order)
        last = spawn(batcher.infer([rows(1, value=7)]), "last", order)
        await until(lambda: batcher.queued == 5)
    results = await asyncio.gather(first, *good, bad, last, return_exceptions=True)
    error = results[4]
    assert isinstance(error, ModelExecutionError) and "poisoned input" in str(error)
    for i, task in enumerate(good):
        np.testing.assert_array_equal(task.result()["y"], rows(2, value=2 * i))
    np.testing.assert_array_equal(last.result()["y"], rows(1, value=14))
    # The merged pass of five, then each of the five on its own.
    assert recorder.batches == [(1, 1), (5, 8)]  # the re-runs are not counted again


async def test_cancelled_callers_do_not_break_their_batch_mates(picky: TorchRuntime) -> None:
    recorder = Recorder()
    batcher = Batcher(picky, BatchPolicy(16, 0.0), recorder)
    order: list[str] = []
    async with held(picky):
        first = spawn(batcher.infer([rows(1, value=1)]), "first", order)
        await until(lambda: batcher.running == 1)
        a = spawn(batcher.infer([rows(1, value=2)]), "a", order)
        b = spawn(batcher.infer([rows(1, value=3)]), "b", order)
        c = spawn(batcher.infer([rows(1, value=4)]), "c", order)
        await until(lambda: batcher.queued == 3)
        b.cancel()  # still queued: leaves the queue
        first.cancel()  # already on the thread: its result is dropped
        await until(lambda: batcher.queued == 2)
    async with asyncio.timeout(GUARD_S):
        out_a, out_c = await asyncio.gather(a, c)
    assert first.cancelled() and b.cancelled()
    np.testing.assert_array_equal(out_a["y"], rows(1, value=4))
    np.testing.assert_array_equal(out_c["y"], rows(1, value=8))
    assert recorder.batches == [(1, 1), (2, 2)]


# ---- priority --------------------------------------------------------------------------------


async def test_higher_priority_is_dequeued_first_fifo_within_a_level(picky: TorchRuntime) -> None:
    policy = BatchPolicy(2, 0.0, priority_levels=3)
    batcher = Batcher(picky, policy)
    order: list[str] = []
    tasks = []
    async with held(picky):
        tasks.append(spawn(batcher.infer([rows(1)], policy.level_index(3)), "first", order))
        await until(lambda: batcher.running == 1)
        for tag, priority in [("L1", 3), ("L2", 0), ("M1", 2), ("L3", None), ("H1", 1),
                              ("M2", "2"), ("H2", 1), ("H3", 1), ("L4", 3)]:  # fmt: skip
            tasks.append(spawn(batcher.infer([rows(1)], policy.level_index(priority)), tag, order))
        await until(lambda: batcher.queued == 9)
    await asyncio.gather(*tasks)
    assert order == ["first", "H1", "H2", "H3", "M1", "M2", "L1", "L2", "L3", "L4"]


def test_priority_levels_and_range() -> None:
    policy = BatchPolicy(priority_levels=3)
    assert [policy.level_index(p) for p in (1, 2, 3, 0, None, "1", " 2 ")] == [0, 1, 2, 2, 2, 0, 1]
    assert BatchPolicy(priority_levels=3, default_priority_level=1).level_index(0) == 0
    for bad in (4, -1, True, "high", 1.5, 2**64 - 1):
        with pytest.raises(InvalidInputError, match=r"out of range 0\.\.3"):
            policy.level_index(bad)
    assert BatchPolicy().level_index(99) == 0  # no levels: priority is ignored


# ---- instances -------------------------------------------------------------------------------


async def test_two_instances_run_two_passes_at_once(tmp_path: Path) -> None:
    path = scripted(Picky(), tmp_path / "picky.pt")
    with runtime_for(path, ANY_WIDTH, instances=2) as runtime:
        batcher = Batcher(runtime, BatchPolicy(4, 0.0, instances=2))
        async with held(runtime):
            # One thread is held; the other still serves (with one instance this would hang).
            async with asyncio.timeout(GUARD_S):
                out = await batcher.infer([rows(1, value=5)])
        np.testing.assert_array_equal(out["y"], rows(1, value=10))


# ---- through the data plane ------------------------------------------------------------------


def _request(x: np.ndarray, **parameters: object) -> InferenceRequest:
    return InferenceRequest(
        model_name="m",
        inputs=[InferInput("x", "FP32", tuple(x.shape), x)],
        parameters=dict(parameters),
    )


async def test_data_plane_checks_each_request_before_it_is_queued(picky: TorchRuntime) -> None:
    plane = DataPlane("m", "1", picky, "0", policy=BatchPolicy(8, 0.0, priority_levels=2))
    assert plane.batcher is not None
    with pytest.raises(InvalidInputError, match=r"priority 3 is out of range 0\.\.2"):
        await plane.infer(_request(rows(1), priority=3))
    header = _request(rows(1))
    header.priority_header = "9"
    with pytest.raises(InvalidInputError, match="priority 9 is out of range"):
        await plane.infer(header)
    header.parameters["priority"] = 1  # the parameter wins over the header
    assert (await plane.infer(header)).outputs[0].shape == (1, 4)
    wrong = InferenceRequest("m", [InferInput("x", "FP64", (1, 4), rows(1).astype(np.float64))])
    with pytest.raises(InvalidInputError, match="input 'x': expected datatype FP32"):
        await plane.infer(wrong)
    assert plane.batcher.queued == 0
    plane.close()


async def test_fixed_batch_dimension_turns_batching_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fixed = Signature.from_dict(
        {
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4]}],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [2, 4]}],
        }
    )
    assert "input 'x' has shape [2, 4]" in batching_blocker(fixed)
    assert batching_blocker(ANY_WIDTH) == ""
    with runtime_for(scripted(Picky(), tmp_path / "p.pt"), fixed) as runtime:
        with caplog.at_level(logging.WARNING):
            plane = DataPlane("m", "1", runtime, "0", policy=BatchPolicy(8, 0.01))
        assert "batching is off" in caplog.text
        assert plane.batcher is None and not plane.policy.batching
        recorder = Recorder()
        plane = DataPlane("m", "1", runtime, "0", BatchPolicy(8, 0.01, priority_levels=2), recorder)
        assert plane.batcher is not None and plane.policy.max_batch_size == 1
        outs = await asyncio.gather(*(plane.infer(_request(rows(2))) for _ in range(3)))
        assert [o.outputs[0].shape for o in outs] == [(2, 4)] * 3
        assert recorder.batches == [(1, 2)] * 3  # priority still applies, merging does not
