"""An external server (bring your own Triton) as the agent sees it: watched, never run.

The server here is a real Torch worker started by the test, standing in for somebody's Triton:
it speaks the same protocol (grpc.health.v1, ModelReady, /metrics), and what is under test is
the agent's side. tests/e2e/test_triton.py does the same with a real tritonserver behind Envoy.
"""

from __future__ import annotations

from pathlib import Path

from meshline.v1 import agent_pb2, resources_pb2
from tests.harness.worker import running_worker
from tests.workers.agent.helpers import until, workload
from workers.agent.supervisor import Supervisor
from workers.demo import build_mlp

State = agent_pb2.WorkerState


def _external(grpc_address: str, http_address: str, deployment: str = "d") -> agent_pb2.Workload:
    w = workload(Path("/nonexistent"), "r1")
    w.deployment = deployment
    w.runtime = "triton"
    w.model_path = ""
    w.external.CopyFrom(
        resources_pb2.ExternalEndpoint(grpc_address=grpc_address, http_address=http_address)
    )
    return w


async def test_an_external_server_is_watched_and_reported_not_started(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    model = build_mlp(tmp_path / "m.pt")
    with running_worker(tmp_path, model, model_name="d") as server:
        http = f"{server.host}:{server.http_port}"
        supervisor.set_desired([_external(server.grpc_target, http)])
        await until(
            lambda: [w.state for w in supervisor.report().workers] == [State.WORKER_STATE_HEALTHY],
            "the external server to be healthy",
        )
        (worker,) = supervisor.workers.values()
        assert worker.process is None  # nothing was started
        (report,) = supervisor.report().workers
        assert (report.grpc_address, report.http_address) == (server.grpc_target, http)
        assert report.runtime == "external" and report.last_error == ""
        assert worker.pid is None and report.memory_bytes == 0  # not a process of ours
    # The server stops: reported unhealthy with the reason, and not restarted by the agent.
    await until(
        lambda: supervisor.report().workers[0].state == State.WORKER_STATE_UNHEALTHY,
        "the stopped server to be unhealthy",
    )
    report = supervisor.report().workers[0]
    assert server.grpc_target in report.last_error and "unreachable" in report.last_error
    assert report.restarts == 0 and worker.process is None


async def test_an_external_server_without_the_model_never_serves(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    model = build_mlp(tmp_path / "m.pt")
    with running_worker(tmp_path, model, model_name="another-model") as server:
        http = f"{server.host}:{server.http_port}"
        supervisor.set_desired([_external(server.grpc_target, http, deployment="d")])
        await until(lambda: any(w.last_error for w in supervisor.report().workers), "a reason")
        report = supervisor.report().workers[0]
        assert report.state == State.WORKER_STATE_UNHEALTHY
        assert report.last_error.startswith(
            f"external Triton {server.grpc_target} does not serve model 'd' (NOT_FOUND: "
        )


async def test_an_external_workload_asks_for_one_endpoint_whatever_the_replicas(
    supervisor: Supervisor,
) -> None:
    w = _external("127.0.0.1:1", "127.0.0.1:2")
    w.replicas = 3
    supervisor.set_desired([w])
    await until(lambda: len(supervisor.workers) == 1, "the watched endpoint")
    await supervisor._reconcile()
    assert len(supervisor.workers) == 1
