"""The agent's Supervisor with real worker processes (no control plane: it is driven directly).

Covers what the end-to-end tests cannot see precisely: crash backoff and its recorded reason,
make-before-break replacement, and that a draining worker is only stopped when released (or
when the control plane is reachable and the drain is overdue).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from meshline.v1 import agent_pb2, resources_pb2
from workers.agent.config import AgentConfig
from workers.agent.supervisor import Supervisor
from workers.demo import build_mlp

State = agent_pb2.WorkerState


def _workload(path: Path, revision: str, replicas: int = 1) -> agent_pb2.Workload:
    signature = resources_pb2.ModelSignature()
    signature.inputs.add(name="input", datatype="FP32", shape=[-1, 784])
    signature.outputs.add(name="output", datatype="FP32", shape=[-1, 10])
    return agent_pb2.Workload(
        deployment="d",
        environment="production",
        revision=revision,
        runtime="torch",
        model_path=str(path),
        signature=signature,
        replicas=replicas,
        model_version=revision,
    )


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _states(sup: Supervisor) -> list[tuple[str, int]]:
    return [(w.revision, w.state) for w in sup.report().workers]


@pytest.fixture
async def supervisor(tmp_path: Path) -> AsyncIterator[Supervisor]:
    config = AgentConfig(
        region="t",
        controlplane="127.0.0.1:1",
        state_dir=tmp_path,
        health_interval_s=0.2,
        max_drain_s=0.5,
    )
    sup = Supervisor(config, on_change=lambda: None)
    task = asyncio.create_task(sup.run())
    try:
        yield sup
    finally:
        await sup.stop()
        task.cancel()


async def test_crashing_worker_backs_off_and_says_why(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    missing = tmp_path / "gone.pt"
    supervisor.set_desired([_workload(missing, "r1")])
    await _until(lambda: any(w.restarts >= 2 for w in supervisor.workers.values()), "2 restarts")
    worker = next(iter(supervisor.workers.values()))
    assert str(missing) in worker.last_error and "exited with code 1" in worker.last_error
    assert worker.failures >= 2
    report = supervisor.report().workers[0]
    assert report.state != State.WORKER_STATE_HEALTHY and str(missing) in report.last_error
    # The wait grows with each consecutive failure (0.5 s, 1 s, 2 s, ... capped at 10 s).
    await _until(lambda: not worker.running and worker.exit_noted, "the next exit")
    wait = worker.restart_at - time.monotonic()
    assert 0.5 * 2 ** (worker.failures - 2) < wait <= min(0.5 * 2 ** (worker.failures - 1), 10)


async def test_replacement_is_make_before_break_and_waits_for_release(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    model = build_mlp(tmp_path / "m.pt")
    supervisor.connected = lambda: False  # nobody can confirm the gateway stopped routing
    supervisor.set_desired([_workload(model, "r1")])
    await _until(lambda: _states(supervisor) == [("r1", State.WORKER_STATE_HEALTHY)], "r1")
    old = next(iter(supervisor.workers.values()))

    supervisor.set_desired([_workload(model, "r2")])
    # The old worker serves until the new one is healthy ...
    await _until(lambda: ("r2", State.WORKER_STATE_HEALTHY) in _states(supervisor), "r2 healthy")
    await _until(lambda: ("r1", State.WORKER_STATE_DRAINING) in _states(supervisor), "r1 draining")
    # ... and, draining, keeps running past max_drain_s while the control plane is unreachable.
    old.drain_started -= 60
    await supervisor._reconcile()
    assert old.running and old.worker_id in supervisor.workers

    supervisor.release([old.worker_id])  # the gateway ACKed a config without it
    await _until(lambda: old.worker_id not in supervisor.workers and not old.running, "retired")
    assert _states(supervisor) == [("r2", State.WORKER_STATE_HEALTHY)]


async def test_overdue_drain_is_forced_only_when_connected(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    model = build_mlp(tmp_path / "m.pt")
    supervisor.set_desired([_workload(model, "r1")])
    await _until(lambda: _states(supervisor) == [("r1", State.WORKER_STATE_HEALTHY)], "r1")
    worker = next(iter(supervisor.workers.values()))
    supervisor.set_desired([])
    await _until(lambda: worker.draining, "draining")
    worker.drain_started -= 60
    await _until(lambda: not worker.running, "the overdue worker to stop")
    assert supervisor.workers == {}
