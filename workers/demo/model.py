"""A tiny MNIST-shaped MLP for demos and tests: 784 -> 128 -> ReLU -> 10, float32.

Weights come from `torch.manual_seed(seed)` only (no downloads, no data), so a seed names a model:
the same seed always builds the same numbers, and two seeds give two different "versions".
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

INPUT_SIZE = 784
HIDDEN_SIZE = 128
OUTPUT_SIZE = 10

# The signature a worker serving this model is started with (`--signature` takes it as JSON).
DEMO_SIGNATURE: dict[str, Any] = {
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, INPUT_SIZE]}],
    "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, OUTPUT_SIZE]}],
}


def demo_signature_json() -> str:
    return json.dumps(DEMO_SIGNATURE, separators=(",", ":"))


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(INPUT_SIZE, HIDDEN_SIZE)
        self.relu = nn.ReLU()
        self.out = nn.Linear(HIDDEN_SIZE, OUTPUT_SIZE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.relu(self.hidden(x)))


def build_mlp(path: Path, seed: int = 0) -> Path:
    """Build the MLP with weights from `seed`, save it as TorchScript at `path`, return `path`.

    Deterministic: the same seed gives the same weights, and a fresh process (the CLI) writes the
    same bytes under any file name. (Within one process torch mangles the class names of a second
    trace, so only weights and outputs are equal then.)
    """
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = MLP().eval()
    finally:
        torch.random.set_rng_state(state)  # leave the caller's RNG as it was
    # Traced, not scripted: scripting emits module constants in hash-seed-dependent order, tracing
    # is byte-stable. Saved through a buffer so the archive's inner folder is always "archive"
    # rather than the file's stem: one seed gives byte-identical files under any name.
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch 2.13 marks torch.jit as deprecated; TorchScript is still the format served.
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model, torch.zeros(1, INPUT_SIZE))
        torch.jit.save(traced, buffer)
    return _write_atomically(Path(path), buffer.getvalue())


def _write_atomically(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)  # readers never see a half-written model
    return path


class SlowMLP(nn.Module):
    """The MLP plus `rounds` of dense matrix work per call: a stand-in for a heavy model.

    The extra work is real compute (square matmuls), so a worker serving it saturates the way a
    big model does; the answer is still exactly the MLP's.
    """

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.mlp = MLP()
        self.rounds = rounds
        self.work = nn.Parameter(torch.eye(SLOW_SIZE) * 0.5, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acc = self.work * 1.0
        for _ in range(self.rounds):
            acc = torch.tanh(acc @ self.work)
        return self.mlp(x) + 0.0 * acc[0, 0]


SLOW_SIZE = 192


def build_slow_mlp(path: Path, seed: int = 0, rounds: int = 40) -> Path:
    """Like `build_mlp` (same weights for the same seed) but slow: `rounds` matmuls per call."""
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = SlowMLP(rounds).eval()
    finally:
        torch.random.set_rng_state(state)
    return _save_scripted(model, path)


class FaultyMLP(nn.Module):
    """The MLP, except that it fails on every input that is not all zeros: a broken release
    that still passes the worker's start-up check (a pass on zeros)."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = MLP()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.abs().max() > 0.0):
            raise RuntimeError("faulty model: refuses every non-zero input")
        return self.mlp(x)


def build_faulty_mlp(path: Path, seed: int = 0) -> Path:
    """A version that starts fine and fails every real request (for rollback tests)."""
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = FaultyMLP().eval()
    finally:
        torch.random.set_rng_state(state)
    return _save_scripted(model, path)


def _save_scripted(model: nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        buffer = io.BytesIO()
        torch.jit.save(torch.jit.script(model), buffer)
    return _write_atomically(Path(path), buffer.getvalue())
