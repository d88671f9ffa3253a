"""Dynamic batching and priority in real worker processes, over gRPC and REST.

Order-sensitive tests use a probe model that, for a "blocker" row, spins until a gate file holds
1: the test closes the gate, sends the blocker, queues requests behind it (the worker's own
/metrics says when they are queued), then opens the gate. The probe writes the number of its
forward pass into column 3 of its output, so each caller learns which pass served it: what is
asserted is order and grouping, never speed.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import torch
from prometheus_client.parser import text_string_to_metric_families

from meshline.inference import grpc_service_pb2 as pb
from meshline.inference import grpc_service_pb2_grpc as pb_grpc
from tests.harness.processes import wait_until as harness_wait_until
from tests.harness.worker import WorkerHandle, running_worker, scheduling_args
from tests.workers.torch_worker.helpers import assert_matches_batched, http, images
from workers.demo import DEMO_SIGNATURE

Stub = pb_grpc.GRPCInferenceServiceStub
GUARD_S = 60.0  # a hang guard only
PRIORITY = "x-meshline-priority"

PROBE_SIGNATURE: dict[str, Any] = {
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 4]}],
}


class Probe(torch.nn.Module):
    """y = 2x, y[:, 3] = the number of this pass; -1 anywhere raises; x[:, 1] > 0 awaits a gate."""

    def __init__(self, gate: str) -> None:
        super().__init__()
        self.gate = gate
        self.passes = torch.zeros(1)  # a tensor attribute, saved with the module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x == -1.0).any()):
            raise RuntimeError("poisoned input")
        opened = torch.ones(1)
        if x.shape[0] > 0 and bool((x[:, 1] > 0).any()):
            # The read must feed the output (else the JIT drops it as dead code), and its size
            # comes from the data (else it is folded into a constant).
            size = int(x[:, 1].max().item())
            flag = torch.from_file(self.gate, False, size, dtype=torch.uint8)
            spins = 0
            while int(flag[0]) == 0:
                # Two sizes in turn (the file has two bytes): no read is the same as the last.
                spins += 1
                flag = torch.from_file(self.gate, False, size + spins % 2, dtype=torch.uint8)
            opened = flag[:1].float()
        self.passes.add_(1)
        y = x * 2 * opened
        y[:, 3] = self.passes
        return y


@dataclass(frozen=True)
class Gate:
    """A two-byte file the probe model polls; replaced atomically, so it is never short."""

    path: Path

    def set(self, value: int) -> None:
        partial = self.path.with_suffix(".partial")
        partial.write_bytes(bytes([value, value]))
        os.replace(partial, self.path)


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Gate:
    gate = Gate(tmp_path_factory.mktemp("gate") / "gate.bin")
    gate.set(1)
    return gate


@pytest.fixture(scope="module")
def probe_worker(tmp_path_factory: pytest.TempPathFactory, gate: Gate) -> Iterator[WorkerHandle]:
    path = tmp_path_factory.mktemp("probe") / "probe.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(Probe(str(gate.path))), str(path))
    flags = scheduling_args(max_batch_size=4, max_batch_delay_ms=5, priority_levels=3)
    with running_worker(
        tmp_path_factory.mktemp("probe-logs"),
        path,
        model_name="probe",
        signature=PROBE_SIGNATURE,
        extra_args=flags,
    ) as handle:
        yield handle


@pytest.fixture(scope="module")
def batching_worker(
    tmp_path_factory: pytest.TempPathFactory, demo_model: Path
) -> Iterator[WorkerHandle]:
    with running_worker(
        tmp_path_factory.mktemp("batching-logs"),
        demo_model,
        model_name="mnist",
        signature=DEMO_SIGNATURE,
        extra_args=scheduling_args(max_batch_size=16, max_batch_delay_ms=20),
    ) as handle:
        yield handle


@contextmanager
def grpc_stub(worker: WorkerHandle) -> Iterator[Stub]:
    with grpc.insecure_channel(worker.grpc_target) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


# ---- helpers ---------------------------------------------------------------------------------


def scrape(worker: WorkerHandle) -> dict[str, float]:
    """The worker's /metrics samples by name (histogram buckets left out)."""
    reply = http(f"{worker.http_url}/metrics")
    assert reply.status == 200
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            if "le" not in sample.labels:
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


def passes(worker: WorkerHandle) -> tuple[float, float]:
    """(forward passes, requests they ran) so far."""
    m = scrape(worker)
    return m["meshline_worker_batch_requests_count"], m["meshline_worker_batch_requests_sum"]


def queued(worker: WorkerHandle) -> float:
    return scrape(worker)["meshline_worker_queued_requests"]


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """The harness's poll loop with this module's guard time."""
    harness_wait_until(condition, GUARD_S, what)


def request(
    x: np.ndarray, model: str, datatype: str = "FP32", *, priority: tuple[str, int] | None = None
) -> pb.ModelInferRequest:
    """A raw-input request; `priority` = (int64_param | uint64_param, value), as tritonclient."""
    req = pb.ModelInferRequest(model_name=model)
    req.inputs.add(name="x" if model == "probe" else "input", datatype=datatype, shape=x.shape)
    req.raw_input_contents.append(x.tobytes())
    if priority is not None:
        setattr(req.parameters["priority"], priority[0], priority[1])
    return req


def output(response: pb.ModelInferResponse) -> np.ndarray:
    tensor = response.outputs[0]
    return np.frombuffer(response.raw_output_contents[0], np.float32).reshape(tuple(tensor.shape))


def row(value: float) -> np.ndarray:
    return np.array([[value, 0.0, value, 0.0]], dtype=np.float32)


def served_by(future: Future[pb.ModelInferResponse], value: float) -> int:
    """The pass number that answered a probe request of `row(value)`, checking its numbers."""
    y = output(future.result(timeout=GUARD_S))
    np.testing.assert_array_equal(y[:, :3], row(value)[:, :3] * 2)
    return int(y[0, 3])


def pass_of(future: Future[pb.ModelInferResponse]) -> int:
    return int(output(future.result(timeout=GUARD_S))[0, 3])


def error_of(future: Future[pb.ModelInferResponse]) -> grpc.RpcError:
    error = future.exception(timeout=GUARD_S)
    assert isinstance(error, grpc.RpcError), f"expected an error, got {future.result()}"
    return error


@contextmanager
def blocked(worker: WorkerHandle, gate: Gate, stub: Stub) -> Iterator[Future[Any]]:
    """The probe worker's only inference thread held by a blocker request until the block ends."""
    count, _ = passes(worker)
    gate.set(0)
    try:
        blocker = stub.ModelInfer.future(
            request(np.array([[0, 1, 0, 0]], np.float32), "probe", priority=("int64_param", 1)),
            timeout=GUARD_S,
        )
        wait_until(
            lambda: passes(worker)[0] == count + 1 and queued(worker) == 0,
            "the blocker is on the inference thread",
        )
        yield blocker
    finally:
        gate.set(1)


# ---- batching --------------------------------------------------------------------------------


def test_concurrent_grpc_requests_share_passes_and_get_their_own_rows(
    batching_worker: WorkerHandle, reference: Callable[[np.ndarray], np.ndarray]
) -> None:
    inputs = [images(1 + i % 3, seed=500 + i) for i in range(32)]
    count, total = passes(batching_worker)
    rows_before = scrape(batching_worker)["meshline_worker_batch_rows_sum"]
    with grpc_stub(batching_worker) as stub:
        futures = [stub.ModelInfer.future(request(x, "mnist"), timeout=GUARD_S) for x in inputs]
        results = [output(f.result(timeout=GUARD_S)) for f in futures]
    for x, got in zip(inputs, results, strict=True):
        assert_matches_batched(got, reference(x))
    new_count, new_total = passes(batching_worker)
    assert new_total - total == 32
    assert new_total - total > new_count - count, "no forward pass merged two requests"
    rows_after = scrape(batching_worker)["meshline_worker_batch_rows_sum"]
    assert rows_after - rows_before == sum(len(x) for x in inputs)


def test_malformed_requests_fail_alone_among_good_ones(
    batching_worker: WorkerHandle, reference: Callable[[np.ndarray], np.ndarray]
) -> None:
    good = [images(2, seed=600 + i) for i in range(6)]
    with grpc_stub(batching_worker) as stub:
        send = stub.ModelInfer.future
        futures = [send(request(x, "mnist"), timeout=GUARD_S) for x in good[:3]]
        narrow = send(request(np.zeros((2, 783), np.float32), "mnist"), timeout=GUARD_S)
        wide = send(request(np.zeros((2, 784), np.float64), "mnist", "FP64"), timeout=GUARD_S)
        futures += [send(request(x, "mnist"), timeout=GUARD_S) for x in good[3:]]
        for x, future in zip(good, futures, strict=True):
            assert_matches_batched(output(future.result(timeout=GUARD_S)), reference(x))
        for future, detail in (
            (narrow, "input 'input': expected shape [-1, 784], got [2, 783]"),
            (wide, "input 'input': expected datatype FP32, got FP64"),
        ):
            error = error_of(future)
            assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert detail in str(error.details())


def test_model_error_in_a_merged_pass_fails_only_its_request(
    probe_worker: WorkerHandle, gate: Gate
) -> None:
    with grpc_stub(probe_worker) as stub:
        with blocked(probe_worker, gate, stub) as blocker:
            count, total = passes(probe_worker)
            futures = {v: stub.ModelInfer.future(request(row(v), "probe")) for v in (2, -1, 3, 4)}
            wait_until(lambda: queued(probe_worker) == 4, "4 requests are queued")
        pass_of(blocker)
        error = error_of(futures.pop(-1))
        assert error.code() is grpc.StatusCode.INTERNAL
        assert "poisoned input" in str(error.details())
        for value, future in futures.items():
            served_by(future, value)
    # One batch of 4 formed (its failed pass re-run request by request is not counted again:
    # requests / passes stays the average batch formed, and every request counts once).
    new_count, new_total = passes(probe_worker)
    assert (new_count - count, new_total - total) == (1, 4)


# ---- priority --------------------------------------------------------------------------------


def test_queued_high_priority_requests_run_before_earlier_low_ones(
    probe_worker: WorkerHandle, gate: Gate
) -> None:
    header = [(PRIORITY, "2")]
    with grpc_stub(probe_worker) as stub:
        send = stub.ModelInfer.future
        with blocked(probe_worker, gate, stub) as blocker:
            low = {
                v: send(request(row(v), "probe", priority=("int64_param", 3))) for v in (1, 2, 3)
            }
            low[4] = send(request(row(4), "probe", priority=("int64_param", 0)))  # default: 3
            # The parameter wins over the header.
            low[5] = send(
                request(row(5), "probe", priority=("uint64_param", 3)), metadata=[(PRIORITY, "1")]
            )
            wait_until(lambda: queued(probe_worker) == 5, "the low ones are queued")
            mid = {v: send(request(row(v), "probe"), metadata=header) for v in (11, 12)}
            wait_until(lambda: queued(probe_worker) == 7, "the middle ones are queued")
            high = {
                v: send(request(row(v), "probe", priority=("uint64_param", 1)))
                for v in (21, 22, 23)
            }
            wait_until(lambda: queued(probe_worker) == 10, "the high ones are queued")
        first = pass_of(blocker)
        served = {v: served_by(f, v) - first for v, f in {**low, **mid, **high}.items()}
    # Batches of 4 rows from the head of the queue: level 1, then 2, then 3, FIFO within each.
    assert served == {21: 1, 22: 1, 23: 1, 11: 1, 12: 2, 1: 2, 2: 2, 3: 2, 4: 3, 5: 3}


def test_a_caller_that_gives_up_leaves_the_queue_and_spares_its_batch_mates(
    probe_worker: WorkerHandle, gate: Gate
) -> None:
    with grpc_stub(probe_worker) as stub:
        with blocked(probe_worker, gate, stub) as blocker:
            a = stub.ModelInfer.future(request(row(1), "probe"), timeout=GUARD_S)
            b = stub.ModelInfer.future(request(row(2), "probe"), timeout=0.5)
            c = stub.ModelInfer.future(request(row(3), "probe"), timeout=GUARD_S)
            assert error_of(b).code() is grpc.StatusCode.DEADLINE_EXCEEDED
            wait_until(lambda: queued(probe_worker) == 2, "the expired request left the queue")
        first = pass_of(blocker)
        assert served_by(a, 1) == served_by(c, 3) == first + 1


def test_priority_out_of_range_is_invalid_argument(probe_worker: WorkerHandle) -> None:
    with grpc_stub(probe_worker) as stub:
        for req, metadata in (
            (request(row(1), "probe", priority=("int64_param", 4)), ()),
            (request(row(1), "probe"), (("x-meshline-priority", "9"),)),
        ):
            with pytest.raises(grpc.RpcError) as info:
                stub.ModelInfer(req, metadata=metadata, timeout=GUARD_S)
            assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "is out of range 0..3" in str(info.value.details())

    def rest(parameters: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        body: dict[str, Any] = {
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1] * 4}]
        }
        if parameters:
            body["parameters"] = parameters
        reply = http(
            f"{probe_worker.http_url}/v2/models/probe/infer",
            "POST",
            json.dumps(body).encode(),
            {"Content-Type": "application/json", **headers},
        )
        return reply.status, reply.json()

    status, doc = rest({"priority": 7}, {})
    assert status == 400 and "priority 7 is out of range 0..3" in doc["error"]
    status, doc = rest({}, {"x-meshline-priority": "high"})
    assert status == 400 and "priority high is out of range 0..3" in doc["error"]
    status, doc = rest({"priority": 1}, {"x-meshline-priority": "high"})  # the parameter wins
    assert status == 200 and doc["outputs"][0]["data"][:3] == [2, 2, 2]
