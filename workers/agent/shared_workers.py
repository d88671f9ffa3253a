"""Shared Torch worker processes: many deployments' models in one process (packing).

A deployment with `resources.packing: shared` does not get a process per replica: each replica
is its model loaded into one of the agent's shared workers (`python -m workers.torch_worker
--shared`), through the model repository extension on the process's control port, which only
the agent reaches (the gateway routes clients to its inference ports only). The agent still
tracks each replica as a `Worker` of its own (its own state, health, drain and restarts); this
module owns the processes behind them:

- placement (`choose_shared_worker`, pure): the fullest shared worker with room, so that few
  processes run and an emptied one can stop; never two models of the same name in one
  process (the name is what requests carry); a model that once crashed a shared worker goes
  into one of its own from then on (`isolated`), so it cannot take its neighbours down again;
- a process starts when a model needs one and stops when its last model left;
- after a crash, the activity file the process kept says which model(s) it was loading or
  running for the first time (workers/torch_worker/activity.py): `exits.note_shared_exit`
  charges those, and restarts the neighbours at once without a penalty.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from meshline.inference import grpc_service_pb2 as oip
from meshline.inference import grpc_service_pb2_grpc as oip_grpc
from meshline.process import children
from meshline.process.ports import free_ports
from workers.agent.config import AgentConfig
from workers.agent.launch import TORCH_WORKER_MODULE
from workers.agent.probes import PROBE_CHANNEL_OPTIONS
from workers.agent.standby_pool import StandbyPool

log = logging.getLogger(__name__)

# How long a shared worker may take to listen, and a model to load into it.
START_TIMEOUT_S = 120.0
LOAD_TIMEOUT_S = 300.0
UNLOAD_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SharedFacts:
    """One shared worker as placement sees it."""

    shared_id: str
    deployments: frozenset[str]  # names of the models placed in it
    isolated: bool = False
    accepting: bool = True  # its process runs or starts, and is not being stopped


def choose_shared_worker(
    shared: Sequence[SharedFacts], deployment: str, isolate: bool, models_per_worker: int
) -> str | None:
    """The shared worker a model of `deployment` goes into; None: start a new one.

    The fullest one with room (ties: the first id), so that load gathers in few processes;
    none holding a model of the same name (requests name the model); none that is isolated,
    and none at all for a model to `isolate`."""
    if isolate:
        return None
    fits = [
        s
        for s in shared
        if s.accepting
        and not s.isolated
        and deployment not in s.deployments
        and len(s.deployments) < models_per_worker
    ]
    if not fits:
        return None
    return min(fits, key=lambda s: (-len(s.deployments), s.shared_id)).shared_id


class SharedWorkerError(Exception):
    """A model could not be placed or loaded: the message says why (recorded as its failure).
    `crashed`: its shared worker died meanwhile (the crash, not the model, is what to note)."""

    def __init__(self, message: str, crashed: bool = False) -> None:
        super().__init__(message)
        self.crashed = crashed


# What a model is, for remembering that it crashed a shared worker: every replica of it, and
# every later wake of it, goes alone until its revision changes.
ModelKey = tuple[str, str, str]  # environment, deployment, revision
# Loopback: the control port loads any file of this host as a model; only the agent reaches it.
CONTROL_HOST = "127.0.0.1"


@dataclass
class SharedWorker:
    """One shared worker process and the models (workers, by id) placed in it."""

    shared_id: str
    host: str  # where this host's Envoy and agent reach it
    grpc_port: int
    http_port: int
    control_port: int
    log_path: Path
    activity_path: Path
    isolated: bool = False
    models: dict[str, str] = field(default_factory=dict)  # worker id → deployment
    process: asyncio.subprocess.Process | None = None
    starting: asyncio.Task[None] | None = None
    channel: grpc.aio.Channel | None = None  # inference port: its models' health
    control: grpc.aio.Channel | None = None  # control port: load, unload
    started_at: float = 0.0
    stopping: bool = False
    _culprits: frozenset[str] | None = None

    @property
    def alive(self) -> bool:
        """Its process runs, or is on its way."""
        if self.stopping:
            return False
        if self.process is None:
            return self.starting is not None and not self.starting.done()
        return self.process.returncode is None

    @property
    def pid(self) -> int | None:
        if self.process is None or self.process.returncode is not None:
            return None
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    @property
    def grpc_address(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def facts(self) -> SharedFacts:
        return SharedFacts(
            self.shared_id, frozenset(self.models.values()), self.isolated, self.alive
        )

    def culprits(self) -> frozenset[str]:
        """After a crash: the models its activity file names (read once; none if unreadable)."""
        if self._culprits is None:
            from workers.torch_worker.activity import read_activity

            try:
                self._culprits = frozenset(a.model for a in read_activity(self.activity_path))
            except (OSError, ValueError, KeyError, TypeError):
                self._culprits = frozenset()
        return self._culprits

    def exit_reason(self) -> str:
        return children.exit_reason(self.log_path)


def shared_worker_command(config: AgentConfig, shared: SharedWorker) -> list[str]:
    return [
        sys.executable,
        "-m",
        TORCH_WORKER_MODULE,
        "--shared",
        "--host",
        config.worker_host,
        "--grpc-port",
        str(shared.grpc_port),
        "--http-port",
        str(shared.http_port),
        "--control-host",
        CONTROL_HOST,
        "--control-port",
        str(shared.control_port),
        "--worker-id",
        shared.shared_id,
        "--region",
        config.region,
        "--activity-file",
        str(shared.activity_path),
    ]


class SharedWorkers:
    """The agent's shared worker processes."""

    def __init__(self, config: AgentConfig, standby: StandbyPool, wake: Callable[[], None]) -> None:
        self.config = config
        self.standby = standby
        self._wake = wake  # a shared worker exited: its models must be noted and restarted
        self.running: dict[str, SharedWorker] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Models that crashed a shared worker, and how: they go alone from now on.
        self.isolated: dict[ModelKey, str] = {}

    def isolate(self, model: ModelKey, why: str) -> None:
        self.isolated[model] = why

    def place(self, worker_id: str, deployment: str, model: ModelKey) -> SharedWorker:
        """Put a model into a shared worker (starting one if none fits); synchronous, so two
        placements never both take the last room."""
        self._forget_dead()
        isolate = model in self.isolated
        choice = choose_shared_worker(
            [s.facts() for s in self.running.values()],
            deployment,
            isolate,
            max(1, self.config.models_per_shared_worker),
        )
        shared = self.running[choice] if choice is not None else self._new(isolate)
        shared.models[worker_id] = deployment
        return shared

    def _new(self, isolated: bool) -> SharedWorker:
        config = self.config
        shared_id = f"{config.region}-shared-{uuid.uuid4().hex[:6]}"
        grpc_port, http_port = free_ports(config.worker_host, 2)
        [control_port] = free_ports(CONTROL_HOST, 1)
        folder = config.state_dir / "workers"
        folder.mkdir(parents=True, exist_ok=True)
        shared = SharedWorker(
            shared_id=shared_id,
            host=config.worker_reach_host,
            grpc_port=grpc_port,
            http_port=http_port,
            control_port=control_port,
            log_path=folder / f"{shared_id}.log",
            activity_path=folder / f"{shared_id}.activity.json",
            isolated=isolated,
            started_at=time.monotonic(),
        )
        shared.channel = grpc.aio.insecure_channel(
            f"{shared.host}:{grpc_port}", options=PROBE_CHANNEL_OPTIONS
        )
        shared.control = grpc.aio.insecure_channel(
            f"{CONTROL_HOST}:{control_port}", options=PROBE_CHANNEL_OPTIONS
        )
        shared.starting = asyncio.create_task(self._spawn(shared), name=f"start-{shared_id}")
        self.running[shared_id] = shared
        log.info("starting shared worker %s%s", shared_id, " (isolated)" if isolated else "")
        return shared

    async def _spawn(self, shared: SharedWorker) -> None:
        args = shared_worker_command(self.config, shared)
        process = await self.standby.take(args, shared.log_path)
        if process is None:
            process = await children.spawn(args, shared.log_path)
        shared.process = process
        task = asyncio.create_task(self._wake_on_exit(shared, process))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wake_on_exit(
        self, shared: SharedWorker, process: asyncio.subprocess.Process
    ) -> None:
        await process.wait()
        if not shared.stopping:
            log.warning(
                "shared worker %s exited with code %s (%s); its models: %s",
                shared.shared_id,
                process.returncode,
                shared.exit_reason(),
                ", ".join(sorted(shared.models.values())) or "none",
            )
        self._wake()

    async def _ready(self, shared: SharedWorker) -> None:
        """Wait until its control port answers; SharedWorkerError if it died or took too long."""
        if shared.starting is not None:
            try:
                # Shielded: a load given up (its worker retired) must not cancel the start
                # that its neighbours wait for too.
                await asyncio.shield(shared.starting)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                raise SharedWorkerError(
                    f"shared worker {shared.shared_id} was stopped while starting"
                ) from None
            except (OSError, ValueError) as exc:
                raise SharedWorkerError(
                    f"cannot start shared worker {shared.shared_id}: {exc}"
                ) from exc
        process, control = shared.process, shared.control
        if process is None or control is None:
            raise SharedWorkerError(f"shared worker {shared.shared_id} did not start")
        exited = asyncio.ensure_future(process.wait())
        ready = asyncio.ensure_future(control.channel_ready())
        try:
            await asyncio.wait(
                {exited, ready}, timeout=START_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (exited, ready):
                if not task.done():
                    task.cancel()
        if not ready.done() or ready.cancelled():
            if process.returncode is not None:
                raise SharedWorkerError(
                    f"shared worker {shared.shared_id} exited with code {process.returncode}: "
                    f"{shared.exit_reason()}",
                    crashed=True,
                )
            raise SharedWorkerError(
                f"shared worker {shared.shared_id} did not listen within {START_TIMEOUT_S:.0f}s"
            )

    async def load(self, shared: SharedWorker, config_json: str, deployment: str) -> None:
        """Load one model; SharedWorkerError naming the problem (the worker's own answer)."""
        await self._ready(shared)
        assert shared.control is not None
        stub = oip_grpc.GRPCInferenceServiceStub(shared.control)
        request = oip.RepositoryModelLoadRequest(model_name=deployment)
        request.parameters["config"].string_param = config_json
        try:
            await stub.RepositoryModelLoad(request, timeout=LOAD_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            lost = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN)
            if exc.code() in lost and shared.process is not None:
                # A connection lost mid-load: did the process die? (It is reaped a moment
                # after its sockets close; a crash must be told from a refusal.)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(shared.process.wait()), 5.0)
            if shared.returncode is not None:
                raise SharedWorkerError(
                    f"shared worker {shared.shared_id} exited with code {shared.returncode} "
                    f"while loading the model: {shared.exit_reason()}",
                    crashed=True,
                ) from exc
            raise SharedWorkerError(
                f"cannot load the model into shared worker {shared.shared_id}: "
                f"{exc.code().name}: {exc.details()}"
            ) from exc

    async def leave(self, shared: SharedWorker, worker_id: str) -> None:
        """The model leaves (unloaded if the process runs); the process stops once empty. Its
        name stays taken there until the unload returned: a model of the same name (another
        environment's) must not load beside it meanwhile."""
        deployment = shared.models.get(worker_id)
        if deployment is not None and shared.alive and shared.process is not None:
            await self._unload(shared, deployment)
        shared.models.pop(worker_id, None)
        if not shared.models:
            await self._stop(shared)

    def leave_soon(self, shared: SharedWorker, worker_id: str) -> None:
        """`leave` in the background: an unload waits for the model's requests in flight, and
        the agent's loop must not wait with it."""
        task = asyncio.create_task(self.leave(shared, worker_id), name=f"leave-{worker_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _unload(self, shared: SharedWorker, deployment: str) -> None:
        assert shared.control is not None
        stub = oip_grpc.GRPCInferenceServiceStub(shared.control)
        try:
            await stub.RepositoryModelUnload(
                oip.RepositoryModelUnloadRequest(model_name=deployment), timeout=UNLOAD_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:  # it may have died meanwhile: nothing left to free
            log.warning(
                "cannot unload %s from shared worker %s: %s %s",
                deployment,
                shared.shared_id,
                exc.code().name,
                exc.details(),
            )

    async def _stop(self, shared: SharedWorker) -> None:
        if shared.stopping:
            return
        shared.stopping = True
        if self.running.get(shared.shared_id) is shared:
            del self.running[shared.shared_id]
        log.info("stopping shared worker %s", shared.shared_id)
        if shared.starting is not None and not shared.starting.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await shared.starting
        if shared.process is not None:
            await children.stop(shared.process, grace_s=10.0)
        for channel in (shared.channel, shared.control):
            if channel is not None:
                await channel.close()

    def _forget_dead(self) -> None:
        """A shared worker that died takes no more models (its own are restarted elsewhere)."""
        for shared_id, shared in list(self.running.items()):
            if not shared.alive:
                del self.running[shared_id]

    def pids(self) -> dict[str, int]:
        return {s.shared_id: s.pid for s in self.running.values() if s.pid is not None}

    def live(self) -> list[SharedWorker]:
        """The shared workers running or starting now, by id."""
        self._forget_dead()
        return sorted(self.running.values(), key=lambda s: s.shared_id)

    async def stop(self) -> None:
        for task in list(self._tasks):
            if task.get_name().startswith("leave-"):
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await task
        await asyncio.gather(*(self._stop(s) for s in list(self.running.values())))


def model_config_json(version: str, path: Path, signature: dict[str, object]) -> str:
    """A repository load request's config (workers/torch_worker/model_config.py)."""
    return json.dumps({"version": version, "path": str(path), "signature": signature})
