"""The model runtime: a TorchScript module on CPU, run off the event loop.

Forward passes run on dedicated threads (torch releases the GIL inside), one per `--instances`, so
the event loop keeps serving health checks and parsing the next request meanwhile. On a 2-core box
one instance with one intra-op thread is the default: the other core is left to the event loop and
the gateway.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from workers.oip import datatypes
from workers.oip.errors import ModelExecutionError, ModelLoadError
from workers.oip.model_file import check_model_file
from workers.oip.signature import WILDCARD, Signature

log = logging.getLogger(__name__)

# BLAS kernels pick code paths by pointer alignment, and the float results differ in the last bits
# between them. Raw request bytes land at arbitrary offsets (after a JSON header, inside a
# protobuf), so an input that is not aligned like torch's own allocations is copied once: the
# same input then gives the same output whichever protocol carried it.
ALIGNMENT = 64

READ_ONLY_WARNING = "The given NumPy array is not writable"
# A forward pass may hold the event loop this long (and runs inline) before it goes to the
# inference thread; measured with INLINE_PROBES warm passes at start.
INLINE_BUDGET_S = 0.0005
INLINE_PROBES = 5
INLINE_OVERRUN = 10  # an inline pass this many times over budget: the model's cost varies
# TorchScript's profiling executor runs a graph as loaded once while recording what it sees, and
# builds its optimized graph on the next pass: both happen at start, not in a client's request.
WARMUP_PASSES = 2
# With batching, one more pass per batch size the batcher forms (largest first), at most this
# many: what a row count costs the first time (allocations) is paid at start too.
MAX_BATCH_WARMUPS = 4

T = TypeVar("T")


class TorchRuntime:
    """Loads one TorchScript file and runs it on numpy inputs in signature order."""

    def __init__(
        self,
        path: Path,
        signature: Signature,
        threads: int = 1,
        instances: int = 1,
        inline_budget_s: float = INLINE_BUDGET_S,
    ) -> None:
        self.path = path
        self.signature = signature
        self.threads = threads
        self.instances = instances
        self.inline_budget_s = inline_budget_s
        self._module: torch.jit.ScriptModule | None = None
        self._executor: ThreadPoolExecutor | None = None
        # Input elements a pass may have and still run on the event loop itself (0 = never):
        # set by warmup() from the measured cost of a pass.
        self.inline_elements = 0
        self._busy = 0
        self._busy_lock = threading.Lock()

    # ---- lifecycle ------------------------------------------------------------------------

    def load(self) -> None:
        """Load the file on CPU; ModelLoadError naming the file if missing or not TorchScript."""
        torch.set_num_threads(self.threads)
        # Raw request bytes become read-only numpy arrays (np.frombuffer, no copy). The model
        # never writes to its inputs, so torch's warning about wrapping one is noise here.
        warnings.filterwarnings("ignore", message=READ_ONLY_WARNING, category=UserWarning)
        check_model_file(self.path)
        try:
            with warnings.catch_warnings():
                # torch 2.13 marks torch.jit as deprecated; TorchScript is the format we serve.
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(str(self.path), map_location="cpu")
        except Exception as exc:  # torch raises RuntimeError/ValueError variants
            raise ModelLoadError(
                f"model file {self.path} is not a loadable TorchScript archive: {_first_line(exc)}"
            ) from exc
        module.eval()
        self._module = module
        self._executor = ThreadPoolExecutor(
            max_workers=self.instances,
            thread_name_prefix="torch-infer",
            initializer=torch.set_num_threads,
            initargs=(self.threads,),
        )
        log.info(
            "loaded %s (%d instance(s), %d torch thread(s))",
            self.path,
            self.instances,
            self.threads,
        )

    def warmup(self, batch_sizes: Sequence[int] = ()) -> None:
        """Forward passes on zeros before the worker serves, so that no client request is the
        model's first: the first proves the model fits its signature; WARMUP_PASSES at the
        signature's shape (-1 dims as 1) take the profiling executor past its profiling and
        optimizing runs; then one pass per batch size (`batch_sizes`: rows the batcher forms,
        -1 first dims as that many rows). Logged with what it cost."""
        start = time.perf_counter()
        arrays = self._zeros(rows=1)
        for _ in range(WARMUP_PASSES):
            try:
                self.infer_sync(arrays)
            except ModelExecutionError as exc:
                raise ModelLoadError(
                    f"model file {self.path} does not fit its signature: {exc}"
                ) from exc
        sizes = sorted({n for n in batch_sizes if n > 1}, reverse=True)[:MAX_BATCH_WARMUPS]
        for rows in sizes:
            try:
                self.infer_sync(self._zeros(rows))
            except ModelExecutionError as exc:  # the batcher then runs requests one by one
                log.warning("warm-up pass of %d rows failed: %s", rows, exc)
        log.info(
            "warmed up: %d forward pass(es)%s in %.0f ms",
            WARMUP_PASSES + len(sizes),
            f", batches of {', '.join(map(str, sizes))} rows" if sizes else "",
            (time.perf_counter() - start) * 1e3,
        )
        self.inline_elements = self._elements_worth_inlining(arrays)

    def _zeros(self, rows: int) -> list[np.ndarray]:
        """Inputs of zeros in the signature's shapes, a -1 first dim as `rows`, others as 1."""
        return [
            np.zeros(
                (rows, *spec.example_shape()[1:])
                if spec.shape and spec.shape[0] == WILDCARD
                else spec.example_shape(),
                dtype=datatypes.lookup(spec.datatype).numpy,
            )
            for spec in self.signature.inputs
        ]

    def _elements_worth_inlining(self, arrays: list[np.ndarray]) -> int:
        """How big a pass (in input elements) may be and still run inline on the event loop.

        Handing a pass to the inference thread and back costs ~0.1-0.2 ms of thread switches
        and GIL hand-offs, more than a small model's whole forward pass (the demo MLP's is
        ~20 us): such passes run inline, which serves ~1.4x the requests at c=16. A pass whose
        measured cost, scaled by its size, would hold the loop longer than the budget goes to
        the thread, so health checks and new requests never wait long; one that still runs
        far over budget turns inlining off for good. With several instances passes must
        overlap: always the threads.
        """
        if self.instances > 1 or self.inline_budget_s <= 0 or not arrays:
            return 0
        timings = []
        for _ in range(INLINE_PROBES):
            start = time.perf_counter()
            self.infer_sync(arrays)
            timings.append(time.perf_counter() - start)
        elements = max(1, sum(a.size for a in arrays))
        median = sorted(timings)[len(timings) // 2]
        if median > self.inline_budget_s:
            log.info(
                "a forward pass takes %.1f ms: passes run on the inference thread", median * 1e3
            )
            return 0
        per_element = median / elements
        limit = int(self.inline_budget_s / per_element) if per_element > 0 else elements
        log.info(
            "a pass of %d input elements takes %.0f us: passes up to %d elements run inline",
            elements,
            per_element * elements * 1e6,
            limit,
        )
        return limit

    @property
    def loaded(self) -> bool:
        return self._module is not None

    @property
    def busy(self) -> int:
        """Forward passes running right now (may outlive a cancelled request)."""
        return self._busy

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # ---- inference ------------------------------------------------------------------------

    async def infer(self, inputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Run forward, inline when it is short (see warmup), else on the inference thread;
        inputs in signature order."""
        # Never beside a pass on the inference thread: with one instance, one pass at a time.
        if (
            self.inline_elements
            and not self._busy
            and sum(a.size for a in inputs) <= self.inline_elements
        ):
            # CPU time, not wall time: on a busy machine the OS may preempt any pass, and that
            # says nothing about the model's cost.
            start = time.thread_time()
            try:
                return self.infer_sync(inputs)
            finally:
                spent = time.thread_time() - start
                if spent > INLINE_OVERRUN * self.inline_budget_s:
                    log.warning(
                        "an inline pass took %.1f ms (budget %.1f ms): passes run on the "
                        "inference thread from now on",
                        spent * 1e3,
                        self.inline_budget_s * 1e3,
                    )
                    self.inline_elements = 0
        return await self.run_in_executor(self.infer_sync, list(inputs))

    async def run_in_executor(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on an inference thread (the batcher runs whole batches this way)."""
        if self._executor is None:
            raise ModelExecutionError("model is not loaded")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def infer_sync(self, inputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Forward pass on the calling thread; returns outputs by declared name."""
        module = self._module
        if module is None:
            raise ModelExecutionError("model is not loaded")
        with self._busy_lock:
            self._busy += 1
        try:
            with torch.inference_mode():
                tensors = [_aligned(torch.from_numpy(a)) for a in inputs]
                try:
                    result = module(*tensors)
                except Exception as exc:  # torch.jit.Error and friends from inside the model
                    raise ModelExecutionError(f"model failed: {_summary(exc)}") from exc
                return self._to_outputs(result)
        finally:
            with self._busy_lock:
                self._busy -= 1

    def _to_outputs(self, result: Any) -> dict[str, np.ndarray]:
        named = _name_outputs(result, self.signature.output_names)
        arrays: dict[str, np.ndarray] = {}
        for name, tensor in named.items():
            dt = datatypes.from_torch(tensor.dtype)
            if dt is None:
                raise ModelExecutionError(
                    f"output '{name}': dtype {tensor.dtype} has no Open Inference Protocol "
                    "datatype the torch worker supports"
                )
            self.signature.check_output(name, dt.name, tuple(tensor.shape))
            arrays[name] = tensor.detach().cpu().numpy()
        return arrays


def aligned_empty(shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
    """An uninitialised array in torch-allocated memory, so `_aligned` never has to copy it."""
    dt = datatypes.from_numpy(dtype)
    if dt is None:
        return np.empty(tuple(shape), dtype=dtype)
    array: np.ndarray = torch.empty(tuple(shape), dtype=dt.torch).numpy()
    return array


def _aligned(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.data_ptr() % ALIGNMENT == 0:
        return tensor
    return tensor.clone(memory_format=torch.contiguous_format)


def _name_outputs(result: Any, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """Map what forward returned (tensor, tuple/list, dict) onto the declared output names."""
    if isinstance(result, torch.Tensor):
        if len(names) != 1:
            raise ModelExecutionError(
                f"the model returned one tensor but the signature declares {len(names)} outputs"
            )
        return {names[0]: result}
    if isinstance(result, tuple | list):
        if len(result) != len(names):
            raise ModelExecutionError(
                f"the model returned {len(result)} values but the signature declares "
                f"{len(names)} outputs ({', '.join(names)})"
            )
        return {name: _tensor(name, value) for name, value in zip(names, result, strict=True)}
    if isinstance(result, Mapping):
        missing = [n for n in names if n not in result]
        if missing:
            raise ModelExecutionError(
                f"the model returned a dict without output(s) {', '.join(missing)} "
                f"(it has: {', '.join(map(str, result))})"
            )
        return {name: _tensor(name, result[name]) for name in names}
    raise ModelExecutionError(
        f"the model returned {type(result).__name__}; expected a tensor, a tuple/list or a dict "
        "of tensors"
    )


def _tensor(name: str, value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ModelExecutionError(
            f"output '{name}': the model returned {type(value).__name__}, not a tensor"
        )
    return value


def _summary(exc: BaseException) -> str:
    """The useful line of a TorchScript error: its last line names the failing op's error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].startswith("The following operation failed in the TorchScript interpreter"):
        return lines[-1]
    return lines[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
