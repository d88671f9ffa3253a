"""Workloads and waits shared by the agent's tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from meshline.v1 import agent_pb2, resources_pb2
from workers.agent.config import AgentConfig
from workers.agent.gpu_memory import NVIDIA_SMI_ARGS
from workers.agent.supervisor import Supervisor

# The EDS hostnames outside the region, as the control plane would send them.
REMOTE_HOSTNAMES = frozenset({"activator", "gateway.eu", "gateway.us"})


def local_cluster_names(deployment: str, environment: str, track: str) -> list[str]:
    """Names the control plane might give a workload's local clusters (opaque to the agent)."""
    base = f"{deployment}.{environment}{'@' + track if track else ''}~local"
    return [f"{base}.grpc", f"{base}.http"]


def workload(
    path: Path, revision: str, replicas: int = 1, track: str = "", version: str = ""
) -> agent_pb2.Workload:
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
        model_version=version or revision,
        track=track,
        local_clusters=local_cluster_names("d", "production", track),
    )


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def states(sup: Supervisor) -> list[tuple[str, int]]:
    return [(w.revision, w.state) for w in sup.report().workers]


def agent_config(tmp_path: Path, standby_workers: int = 0) -> AgentConfig:
    """No standby interpreter unless asked: test_standby_pool.py covers those."""
    return AgentConfig(
        region="t",
        controlplane="127.0.0.1:1",
        state_dir=tmp_path,
        health_interval_s=0.2,
        max_drain_s=0.5,
        standby_workers=standby_workers,
    )


def nvidia_smi_stand_in(tmp_path: Path, body: str) -> str:
    """An executable `nvidia-smi` (the test machines have none) that runs `body` (sh) when
    asked the query the agent makes, and fails naming the arguments otherwise."""
    path = tmp_path / "nvidia-smi"
    path.write_text(
        "#!/bin/sh\n"
        f'[ "$*" = "{" ".join(NVIDIA_SMI_ARGS)}" ] || {{ echo "asked: $*" >&2; exit 64; }}\n'
        f"{body}\n"
    )
    path.chmod(0o755)
    return str(path)
