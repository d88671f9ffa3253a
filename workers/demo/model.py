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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, path)  # readers never see a half-written model
    return path
