"""One worker as the agent tracks it: its workload, process (or model download), ports and
health; how workers are keyed and named."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from meshline.keys import TrackKey
from meshline.v1 import agent_pb2
from workers.agent.launch import RUNTIME_EXTERNAL, WorkerPorts, runtime_of
from workers.agent.worker_load import WorkerLoad

if TYPE_CHECKING:
    from workers.agent.shared_workers import SharedWorker

State = agent_pb2.WorkerState


@dataclass
class Worker:
    """One worker process (and its restarts) as the agent tracks it."""

    worker_id: str
    workload: agent_pb2.Workload
    grpc_port: int
    http_port: int
    log_path: Path
    host: str = "127.0.0.1"
    process: asyncio.subprocess.Process | None = None
    state: int = State.WORKER_STATE_STARTING
    draining: bool = False
    drain_started: float = 0.0
    restarts: int = 0
    last_error: str = ""
    restart_reason: str = ""  # the error its last restart followed (kept once it serves)
    failed_probes: int = 0
    started_at: float = 0.0
    restart_at: float = 0.0  # when a crashed worker may be started again
    exit_noted: bool = False  # this exit's reason and backoff are recorded
    failures: int = 0  # consecutive short-lived runs; drives the backoff
    channel: grpc.aio.Channel | None = None
    gateway_routable: bool = False  # the region's Envoy would send it traffic now
    inflight: int = 0  # requests the region's Envoy has in flight to it (both ports)
    metrics_port: int = 0  # Triton's metrics port (the Torch worker uses its HTTP port)
    load: WorkerLoad = field(default_factory=lambda: WorkerLoad(0, 0, 0))
    # Downloading the model from the control plane before the process starts.
    fetch: asyncio.Task[None] | None = None
    # A packed workload (resources.packing: shared): its model in a shared worker process,
    # the load under way (download included), why the last load failed ("" it did not).
    shared: SharedWorker | None = None
    loading: asyncio.Task[None] | None = None
    load_error: str = ""
    load_crashed: bool = False  # the load failed because its shared worker died
    # A packed model's counters where its load left them: a shared worker keeps a model's
    # counters after an unload, and a later load of the same name must start from zero.
    load_baseline: WorkerLoad | None = None

    @property
    def packed(self) -> bool:
        return self.workload.packed

    @property
    def loaded(self) -> bool:
        """A packed model whose load returned without an error."""
        return (
            self.shared is not None
            and self.loading is not None
            and self.loading.done()
            and not self.load_error
        )

    @property
    def key(self) -> TrackKey:
        """The workers that replace each other make-before-break share it."""
        return workload_key(self.workload)

    @property
    def runtime(self) -> str:
        return runtime_of(self.workload)

    @property
    def external(self) -> bool:
        """A server meshline does not run: watched and routed, never started or stopped."""
        return self.runtime == RUNTIME_EXTERNAL

    @property
    def grpc_address(self) -> str:
        if self.external:
            return self.workload.external.grpc_address
        if self.packed and self.shared is None:
            return ""  # not placed in a shared worker yet: no address to route to
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_address(self) -> str:
        if self.external:
            return self.workload.external.http_address
        if self.packed and self.shared is None:
            return ""
        return f"{self.host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        if self.external:
            address = self.workload.external.metrics_address
            return f"http://{address}/metrics" if address else ""
        return WorkerPorts(self.host, self.grpc_port, self.http_port, self.metrics_port).metrics_url

    @property
    def revision(self) -> str:
        return self.workload.revision

    def report(self, routable: bool, memory_bytes: int = 0) -> agent_pb2.WorkerReport:
        """The worker as the control plane hears of it; `routable`: it serves clients now;
        `memory_bytes`: its processes' last measured PSS."""
        return agent_pb2.WorkerReport(
            worker_id=self.worker_id,
            deployment=self.workload.deployment,
            environment=self.workload.environment,
            revision=self.revision,
            grpc_address=self.grpc_address,
            http_address=self.http_address,
            state=State.WORKER_STATE_DRAINING if self.draining else State.ValueType(self.state),
            restarts=self.restarts,
            last_error=self.last_error,
            consecutive_failures=self.failures,
            gateway_routable=routable,
            version=self.workload.model_version,
            inflight=self.inflight,
            track=self.workload.track,
            queued=self.load.queued,
            requests=self.load.requests,
            batches=self.load.batches,
            runtime=self.runtime,
            memory_bytes=memory_bytes,
            shared_worker=self.shared.shared_id if self.packed and self.shared else "",
            last_restart_reason=self.restart_reason,
        )

    @property
    def pid(self) -> int | None:
        """Its own process while that runs (a standby it became keeps the standby's pid);
        None for an external server, during its model's download, or after an exit."""
        if self.external or self.process is None or self.process.returncode is not None:
            return None
        return self.process.pid

    @property
    def running(self) -> bool:
        if self.external:
            return True  # not ours to run: its health alone says whether it serves
        if self.packed:
            if self.loading is not None and not self.loading.done():
                return True  # its model is on the way into a shared worker
            return self.shared is not None and self.shared.alive and not self.load_error
        if self.fetch is not None and not self.fetch.done():
            return True  # starting: its model is on the way
        return self.process is not None and self.process.returncode is None


def model_key(worker: Worker) -> tuple[str, str, str]:
    """A packed worker's model, as a shared worker crash is remembered for."""
    return (worker.workload.environment, worker.workload.deployment, worker.revision)


def workload_key(workload: agent_pb2.Workload) -> TrackKey:
    return TrackKey(workload.environment, workload.deployment, workload.track)


_NOT_IN_ID = re.compile(r"[^a-z0-9.-]+")


def new_worker_id(region: str, workload: agent_pb2.Workload) -> str:
    """Unique, and readable in logs and Envoy's admin: region, deployment, track (if any)."""
    parts = [region, workload.deployment]
    if workload.track:
        parts.append(_NOT_IN_ID.sub("-", workload.track.lower()).strip("-.") or "track")
    return "-".join([*parts, uuid.uuid4().hex[:6]])


def wanted_workers(workload: agent_pb2.Workload) -> int:
    """Worker processes a workload asks for; an external server is one endpoint, watched once."""
    if runtime_of(workload) == RUNTIME_EXTERNAL:
        return min(1, workload.replicas)
    return workload.replicas
