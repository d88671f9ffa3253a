"""Triton Python-backend model: one TorchScript file on CPU, Triton's batches as one forward pass.

workers.triton_worker copies this file into <repository>/<model>/<version>/model.py; it runs in
Triton's Python backend stub (the venv's interpreter), so it imports nothing from meshline.
config.pbtxt's parameters name the TorchScript file (`model_path`) and torch's thread count.

Why the batching happens here: Triton's dynamic batcher hands the Python backend a *list* of
requests, and only the model can turn them into one forward pass. `run_requests` concatenates the
requests along dim 0, runs the model once and splits the outputs back. Requests whose inputs
differ beyond dim 0 run in separate groups; a group whose forward pass fails (or whose outputs do
not split by batch) is re-run one request at a time, so only the bad request gets an error.

Typed loosely where Triton's objects appear: triton_python_backend_utils exists only inside the
stub (mypy sees it as Any through ignore_missing_imports).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    import triton_python_backend_utils as pb_utils
except ModuleNotFoundError:  # imported outside Triton: only the batching helpers are usable
    pb_utils = None

Arrays = list[np.ndarray]
Forward = Callable[[Arrays], Arrays]  # inputs in config order -> outputs in config order


@dataclass(frozen=True)
class Failure:
    """Why one request got no outputs."""

    message: str


Result = Arrays | Failure


def run_requests(requests: Sequence[Arrays], forward: Forward, batched: bool) -> list[Result]:
    """Outputs (or a Failure) per request, in request order.

    batched: dim 0 of every tensor is the batch dim (config max_batch_size > 0), so requests whose
    other dims and dtypes agree are concatenated into one forward pass.
    """
    if not batched:
        return [run_one(inputs, forward) for inputs in requests]
    groups: dict[tuple[tuple[str, tuple[int, ...]], ...], list[int]] = {}
    for i, inputs in enumerate(requests):
        key = tuple((a.dtype.str, tuple(a.shape[1:])) for a in inputs)
        groups.setdefault(key, []).append(i)
    results: dict[int, Result] = {}
    for members in groups.values():
        split = run_group([requests[i] for i in members], forward) if len(members) > 1 else None
        for n, i in enumerate(members):
            results[i] = split[n] if split is not None else run_one(requests[i], forward)
    return [results[i] for i in range(len(requests))]


def run_group(requests: Sequence[Arrays], forward: Forward) -> list[Arrays] | None:
    """One forward pass over the concatenated requests, outputs split back; None if that fails."""
    if any(not inputs or any(a.ndim == 0 for a in inputs) for inputs in requests):
        return None
    sizes = [int(inputs[0].shape[0]) for inputs in requests]
    if any(a.shape[0] != size for r, size in zip(requests, sizes, strict=True) for a in r):
        return None
    total = sum(sizes)
    batch = [np.concatenate(column) for column in zip(*requests, strict=True)]
    try:
        outputs = forward(batch)
    except Exception:
        return None
    if any(out.ndim == 0 or out.shape[0] != total for out in outputs):
        return None
    offsets = np.cumsum(sizes)[:-1]
    per_output = [np.split(out, offsets) for out in outputs]
    return [[parts[n] for parts in per_output] for n in range(len(requests))]


def run_one(inputs: Arrays, forward: Forward) -> Result:
    try:
        return forward(inputs)
    except Exception as exc:
        return Failure(summary(exc))


def summary(exc: BaseException) -> str:
    """The useful line of an error: TorchScript puts the failing op's message last."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].startswith("The following operation failed in the TorchScript interpreter"):
        return f"model failed: {lines[-1]}"
    return f"model failed: {lines[0]}"


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: np.dtype


class TorchScriptForward:
    """The loaded module as a Forward: numpy in, numpy out in declared order and dtype."""

    def __init__(self, path: str, threads: int, outputs: Sequence[TensorInfo]) -> None:
        import torch

        torch.set_num_threads(threads)
        # Triton's input buffers are read-only; the model never writes to its inputs.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit: deprecated in 2.13
                self.module = torch.jit.load(path, map_location="cpu").eval()
        except Exception as exc:  # torch raises RuntimeError/ValueError variants
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RuntimeError(
                f"model file {path} is not a loadable TorchScript archive: {first}"
            ) from exc
        self.torch = torch
        self.outputs = list(outputs)

    def __call__(self, inputs: Arrays) -> Arrays:
        torch = self.torch
        with torch.inference_mode():
            result = self.module(*[torch.from_numpy(a) for a in inputs])
        return [
            self._checked(info, tensor)
            for info, tensor in zip(self.outputs, self._named(result), strict=True)
        ]

    def _named(self, result: Any) -> list[Any]:
        """forward's return value (tensor, tuple/list or dict) as tensors in declared order."""
        names = [o.name for o in self.outputs]
        if isinstance(result, Mapping):
            missing = [n for n in names if n not in result]
            if missing:
                raise ValueError(f"the model returned a dict without output(s) {missing}")
            return [result[n] for n in names]
        values = list(result) if isinstance(result, tuple | list) else [result]
        if len(values) != len(names):
            raise ValueError(
                f"the model returned {len(values)} value(s) but the config declares "
                f"{len(names)} output(s)"
            )
        return values

    def _checked(self, info: TensorInfo, tensor: Any) -> np.ndarray:
        if not isinstance(tensor, self.torch.Tensor):
            raise ValueError(f"output '{info.name}': the model returned {type(tensor).__name__}")
        array: np.ndarray = tensor.detach().cpu().numpy()
        if array.dtype != info.dtype:
            raise ValueError(
                f"output '{info.name}': the model returned {array.dtype}, the config declares "
                f"{info.dtype}"
            )
        return array


class TritonPythonModel:
    """The class Triton's Python backend instantiates, once per model instance."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.input_names = [t["name"] for t in config["input"]]
        self.output_names = [t["name"] for t in config["output"]]
        self.batched = int(config.get("max_batch_size", 0)) > 0
        outputs = [
            TensorInfo(t["name"], np.dtype(pb_utils.triton_string_to_numpy(t["data_type"])))
            for t in config["output"]
        ]
        self.forward = TorchScriptForward(
            params["model_path"], int(params.get("torch_threads", "1")), outputs
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        inputs = [
            [pb_utils.get_input_tensor_by_name(r, name).as_numpy() for name in self.input_names]
            for r in requests
        ]
        responses = []
        for result in run_requests(inputs, self.forward, self.batched):
            if isinstance(result, Failure):
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[], error=pb_utils.TritonError(result.message)
                    )
                )
                continue
            tensors = [
                pb_utils.Tensor(name, np.ascontiguousarray(array))
                for name, array in zip(self.output_names, result, strict=True)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
