"""Requests per principal (x-meshline-principal) in the worker's metrics and failure logs.

The bound is checked on WorkerMetrics itself (150 callers: cheap in-process); the headers are read
by a real worker process, over gRPC and REST.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
import torch
from prometheus_client.parser import text_string_to_metric_families

from meshline.inference import grpc_service_pb2 as pb
from meshline.inference import grpc_service_pb2_grpc as pb_grpc
from meshline.wire import PRINCIPAL_HEADER
from tests.harness.worker import WorkerHandle, running_worker
from tests.workers.torch_worker.helpers import http
from workers.oip.principals import ANONYMOUS, MAX_PRINCIPALS, OTHER
from workers.torch_worker.metrics import WorkerMetrics

METRIC = "meshline_worker_principal_requests"


def per_principal(text: str) -> dict[str, float]:
    """principal label -> requests counted, from the worker's Prometheus text."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == METRIC:
            for sample in family.samples:
                if sample.name == METRIC + "_total":
                    counts[sample.labels["principal"]] = sample.value
    return counts


def test_principals_are_bounded_and_the_rest_counted_as_other() -> None:
    metrics = WorkerMetrics("m", "v1")
    for i in range(MAX_PRINCIPALS + 50):
        with metrics.track("grpc", f"key-{i}"):
            pass
    with metrics.track("http", "key-0"):  # a known one keeps its label once the set is full
        pass
    with metrics.track("http", None):  # anonymous came too late: other
        pass
    counts = per_principal(metrics.render().decode())
    assert len(counts) == MAX_PRINCIPALS + 1
    assert counts["key-0"] == 2
    assert counts["key-99"] == 1
    assert "key-100" not in counts
    assert counts[OTHER] == 51


def test_no_principal_is_anonymous() -> None:
    metrics = WorkerMetrics("m", "v1")
    for principal in (None, "", "ci"):
        with metrics.track("grpc", principal):
            pass
    assert per_principal(metrics.render().decode()) == {ANONYMOUS: 2, "ci": 1}


def test_a_failed_request_is_counted_for_its_principal() -> None:
    metrics = WorkerMetrics("m", "v1")
    with pytest.raises(RuntimeError), metrics.track("grpc", "ci"):
        raise RuntimeError("boom")
    assert per_principal(metrics.render().decode()) == {"ci": 1}


# ---- a real worker ---------------------------------------------------------------------------

SIGNATURE: dict[str, Any] = {
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 4]}],
}


class Poisoned(torch.nn.Module):
    """y = 2x; raises when any value is -1 (a model error: the worker logs the failure)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x == -1.0).any()):
            raise RuntimeError("poisoned input")
        return x * 2


@pytest.fixture(scope="module")
def poisoned_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerHandle]:
    path = tmp_path_factory.mktemp("poisoned") / "poisoned.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in 2.13
        torch.jit.save(torch.jit.script(Poisoned()), str(path))
    with running_worker(
        tmp_path_factory.mktemp("poisoned-logs"), path, model_name="poisoned", signature=SIGNATURE
    ) as handle:
        yield handle


def grpc_infer(worker: WorkerHandle, value: float, principal: str | None) -> grpc.StatusCode:
    request = pb.ModelInferRequest(model_name=worker.model_name)
    tensor = request.inputs.add(name="x", datatype="FP32")
    tensor.shape.extend([1, 4])
    request.raw_input_contents.append(np.full((1, 4), value, dtype=np.float32).tobytes())
    metadata = [(PRINCIPAL_HEADER, principal)] if principal is not None else []
    with grpc.insecure_channel(worker.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        try:
            stub.ModelInfer(request, metadata=metadata, timeout=30)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def rest_infer(worker: WorkerHandle, value: float, principal: str | None) -> int:
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [value] * 4}]}
    headers = {"Content-Type": "application/json"}
    if principal is not None:
        headers[PRINCIPAL_HEADER] = principal
    url = f"{worker.http_url}/v2/models/{worker.model_name}/infer"
    return http(url, "POST", json.dumps(body).encode(), headers).status


def scraped(worker: WorkerHandle) -> dict[str, float]:
    return per_principal(http(worker.http_url + "/metrics").body.decode())


def test_the_worker_counts_requests_per_principal(poisoned_worker: WorkerHandle) -> None:
    before = scraped(poisoned_worker)
    assert grpc_infer(poisoned_worker, 1.0, "ci") is grpc.StatusCode.OK
    assert grpc_infer(poisoned_worker, 1.0, "ci") is grpc.StatusCode.OK
    assert rest_infer(poisoned_worker, 1.0, "web-app") == 200
    assert grpc_infer(poisoned_worker, 1.0, None) is grpc.StatusCode.OK
    assert rest_infer(poisoned_worker, 1.0, "") == 200
    after = scraped(poisoned_worker)
    grown = {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}
    assert grown == {"ci": 2, "web-app": 1, ANONYMOUS: 2}


def test_a_failed_request_logs_its_principal(poisoned_worker: WorkerHandle) -> None:
    assert grpc_infer(poisoned_worker, -1.0, "grpc-caller") is grpc.StatusCode.INTERNAL
    assert rest_infer(poisoned_worker, -1.0, "rest-caller") == 500
    log = poisoned_worker.process.log()
    failures = [line for line in log.splitlines() if "poisoned input" in line]
    assert any("principal 'grpc-caller'" in line for line in failures), log[-3000:]
    assert any("principal 'rest-caller'" in line for line in failures), log[-3000:]
    assert grpc_infer(poisoned_worker, -1.0, None) is grpc.StatusCode.INTERNAL
    last = [line for line in poisoned_worker.process.log().splitlines() if "poisoned input" in line]
    assert "principal anonymous" in last[-1]
