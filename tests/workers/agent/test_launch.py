"""The command lines the agent starts workers with, per runtime, and what their flags mean."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from meshline.v1 import agent_pb2, resources_pb2
from tests.workers.agent.helpers import workload
from workers.agent.launch import WorkerPorts, batching_flags, runtime_of, worker_command
from workers.torch_worker.config import parse_args as parse_torch_args
from workers.triton_worker.config import parse_args as parse_triton_args

PORTS = WorkerPorts("127.0.0.1", grpc=9001, http=9002, metrics=9003)


def _batched(path: Path, runtime: str) -> agent_pb2.Workload:
    w = workload(path, "r1")
    w.runtime = runtime
    w.batching.CopyFrom(
        resources_pb2.BatchingSpec(
            max_batch_size=16,
            max_delay_ms=2.5,
            preferred_batch_sizes=[4, 8],
            priority_levels=3,
            default_priority_level=2,
        )
    )
    w.instances = 2
    return w


def test_no_batching_passes_no_scheduling_flags(tmp_path: Path) -> None:
    assert batching_flags(workload(tmp_path / "m.pt", "r1")) == []


@pytest.mark.parametrize("runtime", ["torch", "triton"])
def test_both_workers_take_the_deployments_batching(runtime: str, tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    model.write_bytes(b"x")
    argv = worker_command(
        _batched(model, runtime),
        worker_id="w1",
        region="eu",
        ports=PORTS,
        scratch_dir=tmp_path / "w1",
    )
    assert argv[:3] == [sys.executable, "-m", f"workers.{runtime}_worker"]
    parse = parse_torch_args if runtime == "torch" else parse_triton_args
    config = parse(argv[3:])  # the worker's own parser accepts exactly what the agent sends
    assert (config.model_name, config.grpc_port, config.http_port) == ("d", 9001, 9002)
    b = config.scheduling
    assert b.max_batch_size == 16 and b.max_batch_delay_ms == 2.5
    assert b.preferred_batch_sizes == (4, 8)
    assert (b.priority_levels, b.default_priority_level, b.instances) == (3, 2, 2)
    if runtime == "triton":
        assert "--metrics-port" in argv and "9003" in argv
        assert str(tmp_path / "w1" / "model-repository") in argv


def test_an_external_server_has_no_command(tmp_path: Path) -> None:
    w = workload(tmp_path / "m.pt", "r1")
    w.runtime = "triton"
    w.external.CopyFrom(
        resources_pb2.ExternalEndpoint(grpc_address="h:8001", http_address="h:8000")
    )
    assert runtime_of(w) == "external"
    with pytest.raises(ValueError, match="runtime 'external' has no worker process"):
        worker_command(w, worker_id="w", region="eu", ports=PORTS, scratch_dir=tmp_path)


def test_metrics_are_read_where_each_runtime_serves_them() -> None:
    assert PORTS.metrics_url == "http://127.0.0.1:9003/metrics"  # Triton's own port
    torch_ports = WorkerPorts("127.0.0.1", grpc=9001, http=9002, metrics=0)
    assert torch_ports.metrics_url == "http://127.0.0.1:9002/metrics"  # the worker's REST port
