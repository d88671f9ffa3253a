"""The backend's batching, outside Triton: many requests -> one forward pass -> split back.

Only the pure part runs here (triton_python_backend_utils exists only inside Triton's stub); the
server tests drive the same code through a real tritonserver.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workers.demo import build_mlp
from workers.triton_worker.backend.model import (
    Arrays,
    Failure,
    TensorInfo,
    TorchScriptForward,
    run_requests,
)


class Recorder:
    """A forward that doubles its input and remembers the batch sizes it saw; rows with a
    negative first value make the whole call fail (a "bad" request poisons its batch)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, inputs: Arrays) -> Arrays:
        (x,) = inputs
        self.calls.append(int(x.shape[0]))
        if (x[:, 0] < 0).any():
            raise RuntimeError("negative input")
        return [x * 2, x.sum(axis=1, keepdims=True)]


def req(*rows: list[float]) -> Arrays:
    return [np.array(rows, dtype=np.float32)]


def test_requests_run_as_one_forward_pass_and_split_back() -> None:
    forward = Recorder()
    requests = [req([1, 2]), req([3, 4], [5, 6]), req([7, 8])]
    results = run_requests(requests, forward, batched=True)
    assert forward.calls == [4]
    for request, result in zip(requests, results, strict=True):
        assert not isinstance(result, Failure)
        np.testing.assert_array_equal(result[0], request[0] * 2)
        np.testing.assert_array_equal(result[1], request[0].sum(axis=1, keepdims=True))


def test_a_failing_request_fails_alone() -> None:
    forward = Recorder()
    results = run_requests([req([1, 2]), req([-1, 0]), req([3, 4])], forward, batched=True)
    assert forward.calls == [3, 1, 1, 1]  # the batch, then one by one
    assert isinstance(results[1], Failure)
    assert results[1].message == "model failed: negative input"
    for i, row in ((0, [1, 2]), (2, [3, 4])):
        result = results[i]
        assert not isinstance(result, Failure)
        np.testing.assert_array_equal(result[0], np.array([row], dtype=np.float32) * 2)


def test_other_trailing_shapes_run_in_their_own_group() -> None:
    forward = Recorder()
    results = run_requests([req([1, 2]), req([1, 2, 3]), req([3, 4])], forward, batched=True)
    assert sorted(forward.calls) == [1, 2]
    assert [r[0].shape for r in results if not isinstance(r, Failure)] == [(1, 2), (1, 3), (1, 2)]


def test_outputs_that_do_not_split_by_batch_fall_back_to_one_by_one() -> None:
    calls: list[int] = []

    def pooled(inputs: Arrays) -> Arrays:  # a model that reduces over the batch
        calls.append(len(inputs[0]))
        return [inputs[0].sum(axis=0, keepdims=True)]

    results = run_requests([req([1, 2]), req([3, 4])], pooled, batched=True)
    assert calls == [2, 1, 1]
    assert [r[0].tolist() for r in results if not isinstance(r, Failure)] == [[[1, 2]], [[3, 4]]]


def test_unbatched_models_run_each_request_alone() -> None:
    forward = Recorder()
    run_requests([req([1, 2]), req([3, 4])], forward, batched=False)
    assert forward.calls == [1, 1]


@pytest.fixture(scope="module")
def demo_forward(tmp_path_factory: pytest.TempPathFactory) -> TorchScriptForward:
    path = build_mlp(tmp_path_factory.mktemp("model") / "m.pt", seed=3)
    return TorchScriptForward(str(path), 1, [TensorInfo("output", np.dtype(np.float32))])


def test_torchscript_forward_batches_like_single_calls(demo_forward: TorchScriptForward) -> None:
    x = np.random.default_rng(1).random((4, 784), dtype=np.float32)
    requests = [[x[i : i + 1]] for i in range(4)]
    batched = run_requests(requests, demo_forward, batched=True)
    for i, result in enumerate(batched):
        assert not isinstance(result, Failure)
        np.testing.assert_allclose(result[0], demo_forward([x[i : i + 1]])[0], atol=1e-5)


def test_torchscript_forward_checks_the_declared_dtype(tmp_path: Path) -> None:
    path = build_mlp(tmp_path / "m.pt", seed=3)
    forward = TorchScriptForward(str(path), 1, [TensorInfo("output", np.dtype(np.float64))])
    [result] = run_requests([[np.zeros((1, 784), np.float32)]], forward, batched=True)
    assert result == Failure(
        "model failed: output 'output': the model returned float32, the config declares float64"
    )


def test_a_bad_model_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pt"
    path.write_text("garbage")
    with pytest.raises(RuntimeError, match=f"model file {path} is not a loadable TorchScript"):
        TorchScriptForward(str(path), 1, [TensorInfo("output", np.dtype(np.float32))])
