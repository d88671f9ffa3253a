"""Fixtures: the demo model built into a temp dir and one real worker serving it (per session)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch

from meshline.inference import grpc_service_pb2_grpc as pb_grpc
from tests.harness.worker import WorkerHandle, running_worker
from tests.workers.torch_worker.helpers import REGION, WORKER_ID
from workers.demo import DEMO_SIGNATURE, build_mlp


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mlp(tmp_path_factory.mktemp("model") / "mnist.pt", seed=0)


@pytest.fixture(scope="session")
def worker(tmp_path_factory: pytest.TempPathFactory, demo_model: Path) -> Iterator[WorkerHandle]:
    with running_worker(
        tmp_path_factory.mktemp("worker-logs"),
        demo_model,
        model_name="mnist",
        model_version="1",
        signature=DEMO_SIGNATURE,
        worker_id=WORKER_ID,
        region=REGION,
    ) as handle:
        yield handle


@pytest.fixture(scope="session")
def reference(demo_model: Path) -> Callable[[np.ndarray], np.ndarray]:
    """What local torch computes for the same model file and input."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in 2.13
        module = torch.jit.load(str(demo_model), map_location="cpu").eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            # clone(): a torch-allocated (64-byte aligned) input, as the worker hands its model.
            out: np.ndarray = module(torch.from_numpy(x).clone()).numpy()
            return out

    return run


@pytest.fixture
def stub(worker: WorkerHandle) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(worker.grpc_target) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)
