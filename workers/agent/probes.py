"""Is a worker serving? One gRPC health check (plus ModelReady for an external Triton), its
meaning for the worker's state (`health.after_probe`), and the worker's own load figures."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshline.inference import grpc_service_pb2 as oip
from meshline.inference import grpc_service_pb2_grpc as oip_grpc
from workers.agent.health import after_probe
from workers.agent.load_scrape import LoadScraper
from workers.agent.worker import State, Worker
from workers.agent.worker_load import WorkerLoad

if TYPE_CHECKING:  # shared_workers imports this module's channel options
    from workers.agent.shared_workers import SharedWorker

# gRPC waits 1 s, then 1.6x longer, before reconnecting a channel whose connect failed: a worker
# that starts listening would be seen seconds late. Probe channels retry every 50 ms, never
# backing off further: a growing back-off (it reached 0.5 s within a one-second start) is
# time a cold start waits after the worker already listens. A refused loopback connect costs
# nothing, and an idle channel does not reconnect at all (only a probe makes it try).
PROBE_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 50),
]


async def health_problem(worker: Worker) -> str:
    """What keeps the worker from serving, or the empty string. An external server must also
    have the deployment's model loaded (a Triton can be up and serve other models)."""
    assert worker.channel is not None
    # A model in a shared worker: that model's own health (the service is its name).
    service = worker.workload.deployment if worker.packed else ""
    try:
        stub = health_pb2_grpc.HealthStub(worker.channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2.0)
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            if service:
                return f"model '{service}' in shared worker {worker.grpc_address} is {status}"
            return f"{worker.grpc_address} reports {status}"
    except grpc.aio.AioRpcError as exc:
        what = "external Triton" if worker.external else "worker"
        return f"{what} {worker.grpc_address} unreachable: {exc.code().name} {exc.details()}"
    if not worker.external:
        return ""
    model = worker.workload.deployment
    try:
        ready = await oip_grpc.GRPCInferenceServiceStub(worker.channel).ModelReady(
            oip.ModelReadyRequest(name=model), timeout=2.0
        )
        if not ready.ready:
            return f"external Triton {worker.grpc_address} has model '{model}' but it is not ready"
    except grpc.aio.AioRpcError as exc:
        return (
            f"external Triton {worker.grpc_address} does not serve model '{model}' "
            f"({exc.code().name}: {exc.details()}); it must be named like the deployment"
        )
    return ""


async def shared_model_problems(shared: SharedWorker, models: Iterable[str]) -> dict[str, str]:
    """What keeps each of `models` in one shared worker from serving ("" for none), from one
    call: the repository index of its control port. A health check per model per probe
    interval was 2,000 calls a second with 1,000 models loaded, and the agent's whole time."""
    address = f"{shared.host}:{shared.grpc_port}"
    if shared.control is None:
        return {m: f"worker {address} unreachable: its control port is not open" for m in models}
    try:
        index = await oip_grpc.GRPCInferenceServiceStub(shared.control).RepositoryIndex(
            oip.RepositoryIndexRequest(), timeout=2.0
        )
    except grpc.aio.AioRpcError as exc:
        problem = f"worker {address} unreachable: {exc.code().name} {exc.details()}"
        return dict.fromkeys(models, problem)
    states = {entry.name: entry for entry in index.models}
    out: dict[str, str] = {}
    for model in models:
        entry = states.get(model)
        if entry is not None and entry.state == "READY":
            out[model] = ""
        else:
            state = entry.state if entry is not None else "UNKNOWN"
            why = f" ({entry.reason})" if entry is not None and entry.reason else ""
            out[model] = f"model '{model}' in shared worker {address} is {state}{why}"
    return out


def since_load(worker: Worker, figures: WorkerLoad) -> WorkerLoad:
    """A packed model's counters since its load (its shared worker's started earlier, maybe
    for another owner of the same name); its first reading is the baseline."""
    if worker.load_baseline is None:
        worker.load_baseline = figures
    base = worker.load_baseline
    return WorkerLoad(
        queued=figures.queued,
        requests=max(0, figures.requests - base.requests),
        batches=max(0, figures.batches - base.batches),
        memory_bytes=figures.memory_bytes,
    )


@dataclass(frozen=True)
class ProbeResult:
    report: bool  # something the control plane should hear about now changed
    state_changed: bool  # the worker's state moved (a healthy new one may let old ones drain)


async def probe(
    worker: Worker, load: LoadScraper, read_load: bool = True, problem: str | None = None
) -> ProbeResult:
    """Probe one running worker and update its state, error and (when healthy) load.
    `problem`: its health already asked (a packed model: its shared worker's index)."""
    before = worker.state
    if not worker.running or worker.channel is None:
        return ProbeResult(False, False)  # an exit is the Supervisor's to record
    if worker.packed and not worker.loaded:
        return ProbeResult(False, False)  # its model is still loading into a shared worker
    outcome = after_probe(
        worker.state,
        worker.failed_probes,
        worker.last_error,
        worker.external,
        problem if problem is not None else await health_problem(worker),
    )
    worker.state = outcome.state
    worker.failed_probes = outcome.failed_probes
    worker.last_error = outcome.last_error
    if outcome.said_why:
        return ProbeResult(True, False)
    answered = worker.load.requests
    if worker.state == State.WORKER_STATE_HEALTHY and read_load:
        # The queue and batch figures alone are no reason to report: under load they change
        # at every read, and each report makes the control plane rebuild; they travel with
        # the next one. Newly answered requests are: they are the autoscaler's sign of
        # life (idle time before scale-to-zero), at most one report per probe interval.
        figures = await load.read(worker)
        if figures is not None and worker.packed:
            figures = since_load(worker, figures)
        if figures is not None:
            worker.load = figures
    if before != worker.state:
        return ProbeResult(True, True)
    return ProbeResult(worker.load.requests != answered, False)
