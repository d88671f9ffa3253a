"""TorchRuntime and DataPlane in process: output mapping, errors, requested outputs."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from workers.oip.errors import (
    InvalidInputError,
    ModelExecutionError,
    ModelLoadError,
    ModelNotFoundError,
)
from workers.oip.signature import Signature
from workers.torch_worker.dataplane import DataPlane, InferenceRequest, InferInput
from workers.torch_worker.runtime import READ_ONLY_WARNING, TorchRuntime


class TupleOut(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x * 2, x.sum(dim=1)


class DictOut(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"sum": x.sum(dim=1), "double": x * 2, "extra": x}


class IntOut(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.long()


class MatMul(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


TWO_OUTPUTS = Signature.from_dict(
    {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}],
        "outputs": [
            {"name": "double", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "sum", "datatype": "FP32", "shape": [-1]},
        ],
    }
)
ONE_OUTPUT = Signature.from_dict(
    {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, -1]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, -1]}],
    }
)


def save(module: torch.nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module), str(path))
    return path


def loaded(module: torch.nn.Module, signature: Signature, tmp_path: Path) -> TorchRuntime:
    runtime = TorchRuntime(save(module, tmp_path / "m.pt"), signature)
    runtime.load()
    return runtime


def request(x: np.ndarray, outputs: list[str] | None = None, **kw: Any) -> InferenceRequest:
    return InferenceRequest(
        model_name=kw.get("model", "m"),
        model_version=kw.get("version", ""),
        inputs=[InferInput("x", "FP32", tuple(x.shape), x)],
        outputs=outputs or [],
    )


X = np.arange(6, dtype=np.float32).reshape(2, 3)


@pytest.mark.parametrize("module", [TupleOut(), DictOut()])
async def test_tuple_and_dict_outputs_map_to_declared_names(
    module: torch.nn.Module, tmp_path: Path
) -> None:
    runtime = loaded(module, TWO_OUTPUTS, tmp_path)
    runtime.warmup()
    plane = DataPlane("m", "1", runtime, "0")
    response = await plane.infer(request(X))
    assert [o.name for o in response.outputs] == ["double", "sum"]
    np.testing.assert_array_equal(response.outputs[0].data, X * 2)
    np.testing.assert_array_equal(response.outputs[1].data, X.sum(axis=1))
    only_sum = await plane.infer(request(X, outputs=["sum"]))
    assert [(o.name, o.shape) for o in only_sum.outputs] == [("sum", (2,))]
    runtime.close()


async def test_data_plane_resolves_names_and_versions(tmp_path: Path) -> None:
    runtime = loaded(TupleOut(), TWO_OUTPUTS, tmp_path)
    plane = DataPlane("m", "1", runtime, "0")
    assert plane.ready() and plane.model_ready("m", "1")
    with pytest.raises(ModelNotFoundError, match="unknown model 'other'"):
        await plane.infer(request(X, model="other"))
    with pytest.raises(ModelNotFoundError, match="no version '2'"):
        await plane.infer(request(X, version="2"))
    with pytest.raises(InvalidInputError, match="unknown output 'nope'"):
        await plane.infer(request(X, outputs=["nope"]))
    plane.start_draining()
    assert not plane.ready()
    assert (await plane.infer(request(X))).outputs  # in-flight work is still served
    runtime.close()


def test_output_count_mismatch_fails_warmup(tmp_path: Path) -> None:
    runtime = loaded(TupleOut(), ONE_OUTPUT, tmp_path)
    with pytest.raises(ModelLoadError, match="does not fit its signature: the model returned 2"):
        runtime.warmup()


def test_output_datatype_mismatch_is_an_execution_error(tmp_path: Path) -> None:
    runtime = loaded(IntOut(), ONE_OUTPUT, tmp_path)
    with pytest.raises(ModelExecutionError, match=r"output 'y': the model returned INT64"):
        runtime.infer_sync([X])


def test_model_error_is_reported(tmp_path: Path) -> None:
    runtime = loaded(MatMul(), ONE_OUTPUT, tmp_path)
    runtime.infer_sync([np.ones((2, 3), np.float32)])
    with pytest.raises(ModelExecutionError) as info:
        runtime.infer_sync([np.ones((2, 5), np.float32)])
    assert "cannot be multiplied" in str(info.value)


def test_read_only_unaligned_inputs_work(tmp_path: Path) -> None:
    runtime = loaded(MatMul(), ONE_OUTPUT, tmp_path)
    body = b"\0" * 4 + np.ones((2, 3), np.float32).tobytes()
    x = np.frombuffer(body, dtype=np.float32, offset=4).reshape(2, 3)
    assert not x.flags.writeable
    out = runtime.infer_sync([x])
    np.testing.assert_array_equal(out["y"], np.full((2, 2), 3.0, np.float32))
    # torch's "not writable" warning is filtered once the runtime is loaded.
    assert any(f[1] is not None and f[1].pattern == READ_ONLY_WARNING for f in warnings.filters)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=f"model file not found: {tmp_path / 'x.pt'}"):
        TorchRuntime(tmp_path / "x.pt", ONE_OUTPUT).load()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"junk")
    with pytest.raises(ModelLoadError, match=f"model file {junk} is not a loadable TorchScript"):
        TorchRuntime(junk, ONE_OUTPUT).load()
