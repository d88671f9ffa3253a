"""Short forward passes run on the event loop; long, parallel or runaway ones on the thread."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from workers.demo import DEMO_SIGNATURE, build_mlp, build_slow_mlp
from workers.oip.signature import Signature
from workers.torch_worker.runtime import TorchRuntime

SIGNATURE = Signature.from_dict(DEMO_SIGNATURE)


def _warm(path: Path, **kw: float) -> TorchRuntime:
    runtime = TorchRuntime(path, SIGNATURE, **kw)  # type: ignore[arg-type]
    runtime.load()
    runtime.warmup()
    return runtime


def _thread_of_pass(runtime: TorchRuntime, rows: int = 1) -> str:
    """Which thread ran one forward pass of `rows` rows (the caller is the event loop)."""
    import asyncio

    seen: list[str] = []
    original = runtime.infer_sync

    def spy(inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
        seen.append(threading.current_thread().name)
        return original(inputs)

    runtime.infer_sync = spy  # type: ignore[method-assign]
    asyncio.run(runtime.infer([np.zeros((rows, 784), dtype=np.float32)]))
    runtime.infer_sync = original  # type: ignore[method-assign]
    return seen[0]


def test_a_small_model_runs_inline_and_big_requests_go_to_the_thread(tmp_path: Path) -> None:
    # A generous budget (50 ms): the demo MLP's ~20 us pass fits even on a loaded machine.
    runtime = _warm(build_mlp(tmp_path / "m.pt"), inline_budget_s=0.05)
    try:
        assert runtime.inline_elements >= 784  # at least a row of the demo MLP
        assert _thread_of_pass(runtime) == threading.current_thread().name
        too_big = runtime.inline_elements // 784 + 1
        assert _thread_of_pass(runtime, rows=too_big).startswith("torch-infer")
    finally:
        runtime.close()


def test_a_slow_model_several_instances_or_no_budget_never_run_inline(tmp_path: Path) -> None:
    slow = _warm(build_slow_mlp(tmp_path / "slow.pt", rounds=400))
    fast = build_mlp(tmp_path / "m.pt")
    parallel = _warm(fast, instances=2)
    off = _warm(fast, inline_budget_s=0.0)
    try:
        assert slow.inline_elements == 0
        assert parallel.inline_elements == 0
        assert off.inline_elements == 0
        assert _thread_of_pass(off).startswith("torch-infer")
    finally:
        for runtime in (slow, parallel, off):
            runtime.close()


def test_an_inline_pass_far_over_budget_turns_inlining_off(tmp_path: Path) -> None:
    runtime = _warm(build_mlp(tmp_path / "m.pt"), inline_budget_s=0.05)
    try:
        assert runtime.inline_elements > 0
        runtime.inline_budget_s = 1e-12  # every pass is now "far over budget"
        assert _thread_of_pass(runtime) == threading.current_thread().name  # this one ran inline
        assert runtime.inline_elements == 0
        assert _thread_of_pass(runtime).startswith("torch-infer")
    finally:
        runtime.close()


def test_no_inline_pass_beside_one_on_the_thread(tmp_path: Path) -> None:
    runtime = _warm(build_mlp(tmp_path / "m.pt"), inline_budget_s=0.05)
    try:
        runtime._busy = 1  # a big pass is running on the inference thread
        assert _thread_of_pass(runtime).startswith("torch-infer")
    finally:
        runtime._busy = 0
        runtime.close()
