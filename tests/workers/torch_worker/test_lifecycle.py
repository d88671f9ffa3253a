"""Start-up failures and graceful shutdown of a real worker process."""

from __future__ import annotations

import concurrent.futures
import json
import re
import signal
import socket
import warnings
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch

from meshline.inference import grpc_service_pb2 as pb
from meshline.inference import grpc_service_pb2_grpc as pb_grpc
from tests.harness.processes import free_port, managed, port_open, wait_until
from tests.harness.worker import WorkerHandle, running_worker, worker_command
from tests.workers.torch_worker.helpers import http
from workers.demo import DEMO_SIGNATURE


def run_to_exit(tmp_path: Path, args: list[str]) -> tuple[int, str]:
    """Start a worker that is expected to fail at start-up; its exit status and output."""
    with managed("worker-expected-to-exit", args, tmp_path) as process:
        returncode = process.proc.wait(timeout=120)
        return returncode, process.log()


def command(model_path: Path, **kw: object) -> list[str]:
    return worker_command(
        model_path,
        grpc_port=free_port(),
        http_port=free_port(),
        **kw,  # type: ignore[arg-type]
    )


def test_missing_model_file_exits_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.pt"
    returncode, log = run_to_exit(tmp_path, command(missing))
    assert returncode != 0
    assert f"model file not found: {missing}" in log


@pytest.mark.parametrize("kind", ["garbage", "state_dict"])
def test_non_torchscript_file_exits_naming_the_path(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.pt"
    if kind == "garbage":
        path.write_bytes(b"this is not a model")
    else:
        torch.save(torch.nn.Linear(784, 10).state_dict(), path)
    returncode, log = run_to_exit(tmp_path, command(path))
    assert returncode != 0
    assert f"model file {path} is not a loadable TorchScript archive" in log


def test_invalid_signature_exits_naming_the_field(demo_model: Path, tmp_path: Path) -> None:
    bad = {"inputs": [{"name": "input", "datatype": "FP33", "shape": [-1, 784]}], "outputs": []}
    returncode, log = run_to_exit(tmp_path, command(demo_model, signature=bad))
    assert returncode == 2
    assert "inputs[0].datatype: unknown datatype 'FP33'" in log


def test_model_that_does_not_fit_its_signature_exits(demo_model: Path, tmp_path: Path) -> None:
    wrong = {
        "inputs": DEMO_SIGNATURE["inputs"],
        "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 5]}],
    }
    returncode, log = run_to_exit(tmp_path, command(demo_model, signature=wrong))
    assert returncode == 1
    assert f"model file {demo_model} does not fit its signature" in log
    assert "output 'output'" in log


def test_port_in_use_exits(demo_model: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = worker_command(demo_model, grpc_port=free_port(), http_port=port)
        returncode, log = run_to_exit(tmp_path, args)
    assert returncode == 1
    assert f"cannot listen for HTTP on 127.0.0.1:{port}" in log


# ---- graceful shutdown -------------------------------------------------------------------------

GATE_SIGNATURE = {
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 4]}],
}


class GatedDouble(torch.nn.Module):
    """Returns 2*x; when x[0, 0] > 0 it first waits until the gate file's first byte is non-zero.

    The test holds a request inside the model for as long as it wants, with no timing involved.
    The wait is bounded (a few minutes of polling) so a broken test cannot hang forever.
    """

    def __init__(self, gate: str) -> None:
        super().__init__()
        self.gate = gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x[0, 0] > 0):
            polls = 0
            while polls < 20_000_000:
                opened = torch.from_file(self.gate, shared=True, size=1, dtype=torch.uint8)
                if int(opened[0]) != 0:
                    break
                polls += 1
        return x * 2


def build_gated_model(path: Path, gate: Path) -> Path:
    gate.write_bytes(b"\0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(GatedDouble(str(gate))), str(path))
    return path


def open_gate(gate: Path) -> None:
    """Flip the byte in place: truncating the file (write_bytes) under the model's mmap would
    crash the worker with SIGBUS."""
    with gate.open("r+b") as f:
        f.write(b"\1")


def in_flight(worker: WorkerHandle) -> int:
    text = http(worker.http_url + "/metrics").body.decode()
    match = re.search(r"^meshline_worker_inflight_requests\{[^}]*\} (\S+)$", text, re.M)
    return int(float(match.group(1))) if match else 0


def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    model = build_gated_model(tmp_path / "gated.pt", gate)
    x = np.full((1, 4), 1.5, dtype=np.float32)
    with (
        running_worker(
            tmp_path,
            model,
            model_name="gated",
            signature=GATE_SIGNATURE,
            # The gated pass is fast at warmup and then waits for the gate: it must wait on
            # the inference thread, not inline on the event loop that has to take the SIGTERM.
            extra_args=["--shutdown-grace-s", "120", "--inline-max-ms", "0"],
        ) as worker,
        grpc.insecure_channel(worker.grpc_target) as channel,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        request = pb.ModelInferRequest(model_name="gated")
        request.inputs.add(name="x", datatype="FP32", shape=[1, 4])
        request.raw_input_contents.append(x.tobytes())
        grpc_reply = stub.ModelInfer.future(request, timeout=180)
        body = json.dumps(
            {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1.5] * 4}]}
        ).encode()
        http_reply = pool.submit(http, worker.http_url + "/v2/models/gated/infer", "POST", body)
        wait_until(lambda: in_flight(worker) == 2, what="two requests in flight")

        worker.process.proc.send_signal(signal.SIGTERM)
        wait_until(
            lambda: "draining, 2 request(s) in flight" in worker.process.log(),
            what="the worker to start draining",
        )
        # It stops accepting: both listening ports close while the requests are still held.
        wait_until(
            lambda: (
                not port_open(worker.host, worker.http_port)
                and not port_open(worker.host, worker.grpc_port)
            ),
            what="listeners to close",
        )
        assert not grpc_reply.done() and not http_reply.done()
        assert worker.process.alive()

        open_gate(gate)
        reply = grpc_reply.result(timeout=120)
        got = np.frombuffer(reply.raw_output_contents[0], dtype=np.float32).reshape(1, 4)
        np.testing.assert_array_equal(got, x * 2)
        answer = http_reply.result(timeout=120)
        assert answer.status == 200, answer.body
        assert answer.json()["outputs"][0]["data"] == [3.0] * 4
        assert worker.process.proc.wait(timeout=60) == 0
        assert "stopped" in worker.process.log()


def test_sigterm_when_idle_exits_zero(demo_model: Path, tmp_path: Path) -> None:
    with running_worker(tmp_path, demo_model) as worker:
        worker.process.proc.send_signal(signal.SIGTERM)
        assert worker.process.proc.wait(timeout=60) == 0
