"""A worker warms its model up before it serves: no client request pays TorchScript's profiling
and optimizing runs, nor the first pass of a batch size the batcher forms.

A real worker process serves a scripted model that writes, into its output, how many forward
passes it ran before this one and the most rows it has seen: the first client request reads
what happened before the worker said it was serving. Several instances turn the inline
measurement (which runs passes of its own) off, so only the warm-up itself is counted.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import torch

from meshline.inference import grpc_service_pb2_grpc as pb_grpc
from tests.harness.load import infer_request, output_array
from tests.harness.worker import running_worker, scheduling_args
from workers.torch_worker.runtime import WARMUP_PASSES

SIGNATURE: dict[str, Any] = {
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 2]}],
}


class PassLog(torch.nn.Module):
    """y[:, 0] = passes run before this one, y[:, 1] = the most rows a pass had before."""

    def __init__(self) -> None:
        super().__init__()
        self.passes = torch.zeros(1)  # tensor attributes: saved with the module
        self.widest = torch.zeros(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        before = torch.cat([self.passes, self.widest]) + x[:, :2] * 0.0
        self.passes.add_(1)
        self.widest.copy_(torch.clamp(self.widest, min=float(x.shape[0])))
        return before


def _save(path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in 2.13
        torch.jit.save(torch.jit.script(PassLog()), str(path))
    return path


def test_the_first_client_request_finds_the_model_warm_at_every_batch_size(
    tmp_path: Path,
) -> None:
    model = _save(tmp_path / "passlog.pt")
    flags = scheduling_args(
        max_batch_size=8, max_batch_delay_ms=1, preferred_batch_sizes=(4,), instances=2
    )
    with running_worker(
        tmp_path / "logs", model, model_name="passlog", signature=SIGNATURE, extra_args=flags
    ) as worker:
        with grpc.insecure_channel(worker.grpc_target) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            request = infer_request("passlog", np.ones((1, 4), dtype=np.float32), name="x")
            first = output_array(stub.ModelInfer(request, timeout=30))
        log = worker.process.log()
    passes_before, widest_before = first[0]
    # Profiled, optimized, then one pass per batch size: 8 (the largest) and 4 (preferred).
    assert passes_before == WARMUP_PASSES + 2, log
    assert widest_before == 8, log
    assert "warmed up: 4 forward pass(es), batches of 8, 4 rows in" in log
