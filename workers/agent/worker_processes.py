"""Starts, restarts and stops worker processes (and fetches their models first): I/O only.

What to start or stop is decided elsewhere (`decide.py`); a start that fails is recorded in
the worker's log like a crash (the Supervisor notes the exit, backs off and retries), never
raised into the loop that serves the other workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Container
from pathlib import Path

import grpc

from meshline.process import children
from meshline.process.ports import free_ports
from meshline.v1 import agent_pb2
from workers.agent.artifacts import NO_MESH, ArtifactCache, ArtifactFetchError, MeshDialer
from workers.agent.config import AgentConfig
from workers.agent.launch import (
    RUNTIME_EXTERNAL,
    RUNTIME_TRITON,
    WorkerPorts,
    runtime_of,
    signature_json,
    worker_command,
)
from workers.agent.probes import PROBE_CHANNEL_OPTIONS
from workers.agent.shared_workers import SharedWorkerError, SharedWorkers, model_config_json
from workers.agent.standby_pool import StandbyPool
from workers.agent.worker import State, Worker, model_key, new_worker_id

log = logging.getLogger(__name__)


class WorkerProcesses:
    """The processes behind the workers, their standby interpreters and model downloads."""

    def __init__(
        self,
        config: AgentConfig,
        wake: Callable[[], None],
        still_wanted: Callable[[Worker], bool],
        mesh: MeshDialer = NO_MESH,
    ) -> None:
        self.config = config
        self._wake = wake  # a process exited, or a model download ended
        self._still_wanted = still_wanted  # checked when a download ends
        self.standby = StandbyPool(config.standby_workers, config.state_dir / "workers" / "standby")
        self.artifacts = ArtifactCache(config.state_dir / "artifacts", mesh)
        self.shared = SharedWorkers(config, self.standby, wake)
        self._tasks: set[asyncio.Task[None]] = set()

    def new_worker(self, workload: agent_pb2.Workload, taken: Container[str]) -> Worker:
        """A worker for `workload` with an id not in `taken` and free ports (not started)."""
        config = self.config
        worker_id = new_worker_id(config.region, workload)
        while worker_id in taken:
            worker_id = new_worker_id(config.region, workload)
        external = runtime_of(workload) == RUNTIME_EXTERNAL
        triton = runtime_of(workload) == RUNTIME_TRITON
        # Workers listen where only this host's Envoy reaches them (loopback by default), never
        # on the gateway's advertised host: other regions come in through the gateway. A
        # packed model takes its shared worker's ports once placed.
        grpc_port, http_port, metrics_port = (
            (0, 0, 0) if external or workload.packed else (*free_ports(config.worker_host, 3),)
        )
        return Worker(
            worker_id=worker_id,
            workload=workload,
            host=config.worker_reach_host,
            grpc_port=grpc_port,
            http_port=http_port,
            metrics_port=metrics_port if triton else 0,
            log_path=config.state_dir / "workers" / f"{worker_id}.log",
        )

    async def start(self, worker: Worker) -> None:
        """Watch an external server; spawn anything else."""
        if worker.external:
            log.info("watching external server %s as %s", worker.grpc_address, worker.worker_id)
            worker.channel = grpc.aio.insecure_channel(worker.grpc_address)
            return
        await self.spawn(worker)

    async def spawn(self, worker: Worker) -> None:
        worker.state = State.WORKER_STATE_STARTING
        worker.failed_probes = 0
        worker.exit_noted = False
        worker.started_at = time.monotonic()
        worker.process = None
        if worker.packed:
            await self._place_packed(worker)
            return
        model_path = self.artifacts.local_path(worker.workload)
        if model_path is None:  # a registry artifact this machine does not have yet
            worker.fetch = asyncio.create_task(
                self._fetch_and_launch(worker), name=f"fetch-{worker.worker_id}"
            )
            return
        await self._launch(worker, model_path)

    async def _fetch_and_launch(self, worker: Worker) -> None:
        """A failed fetch is recorded like a crash (reason in the log, backoff, retry)."""
        sha256 = worker.workload.artifact_sha256
        log.info("worker %s: fetching its model, artifact sha256:%s", worker.worker_id, sha256)
        try:
            path = await self.artifacts.fetch(sha256)
        except Exception as exc:  # ArtifactFetchError names the problem; anything else too
            if not isinstance(exc, ArtifactFetchError):
                log.exception("worker %s: fetching its model failed", worker.worker_id)
            children.mark_failure(worker.log_path, f"cannot fetch the model: {exc}")
            log.error("worker %s: cannot fetch the model: %s", worker.worker_id, exc)
            self._wake()
            return
        if self._still_wanted(worker):
            await self._launch(worker, path)
        self._wake()

    async def _launch(self, worker: Worker, model_path: Path) -> None:
        workload = worker.workload
        if str(model_path) != workload.model_path:
            workload = agent_pb2.Workload()
            workload.CopyFrom(worker.workload)
            workload.model_path = str(model_path)
        try:
            args = worker_command(
                workload,
                worker_id=worker.worker_id,
                region=self.config.region,
                ports=WorkerPorts(
                    self.config.worker_host, worker.grpc_port, worker.http_port, worker.metrics_port
                ),
                scratch_dir=self.scratch_dir(worker),
            )
            worker.process = await self.standby.take(args, worker.log_path)
            if worker.process is None:
                worker.process = await children.spawn(args, worker.log_path)
            else:
                log.info("worker %s runs in a standby interpreter", worker.worker_id)
        except (OSError, ValueError) as exc:
            worker.process = None
            children.mark_failure(worker.log_path, f"cannot start the worker: {exc}")
            log.error("cannot start worker %s: %s", worker.worker_id, exc)
            return
        self._keep(asyncio.create_task(self._wake_on_exit(worker.process)))
        if worker.channel is None:
            worker.channel = grpc.aio.insecure_channel(
                worker.grpc_address, options=PROBE_CHANNEL_OPTIONS
            )

    async def _place_packed(self, worker: Worker) -> None:
        """(Re)load the model into a shared worker: the one it was in died or refused it, so
        it is placed anew (a model that crashed one goes alone)."""
        if worker.shared is not None:
            old, worker.shared = worker.shared, None
            await self.shared.leave(old, worker.worker_id)
        worker.load_error = ""
        worker.load_crashed = False
        worker.load_baseline = None
        worker.loading = asyncio.create_task(
            self._load_packed(worker), name=f"load-{worker.worker_id}"
        )

    async def _load_packed(self, worker: Worker) -> None:
        """A failed load is recorded like a start that failed (reason, backoff, retry)."""
        children.write_marker(worker.log_path, ["load", worker.workload.deployment])
        try:
            path = self.artifacts.local_path(worker.workload)
            if path is None:
                path = await self.artifacts.fetch(worker.workload.artifact_sha256)
            if not self._still_wanted(worker):
                return
            shared = self.shared.place(
                worker.worker_id, worker.workload.deployment, model_key(worker)
            )
            worker.shared = shared
            worker.grpc_port, worker.http_port = shared.grpc_port, shared.http_port
            worker.channel = shared.channel
            log.info(
                "worker %s: loading %s into shared worker %s",
                worker.worker_id,
                worker.workload.deployment,
                shared.shared_id,
            )
            config = model_config_json(
                worker.workload.model_version, path, signature_json(worker.workload.signature)
            )
            await self.shared.load(shared, config, worker.workload.deployment)
        except asyncio.CancelledError:
            raise
        except SharedWorkerError as exc:
            worker.load_error = str(exc)
            worker.load_crashed = exc.crashed
        except ArtifactFetchError as exc:
            worker.load_error = str(exc)
        except Exception as exc:  # anything else is this model's failure too, not the agent's
            log.exception("worker %s: loading its model failed", worker.worker_id)
            worker.load_error = f"cannot load the model: {exc}"
        finally:
            self._wake()
        if worker.load_error:
            children.mark_failure(worker.log_path, worker.load_error)
            log.error("worker %s: %s", worker.worker_id, worker.load_error)

    async def _wake_on_exit(self, process: asyncio.subprocess.Process) -> None:
        """React to a crash at once instead of at the next health probe."""
        await process.wait()
        self._wake()

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self, worker: Worker) -> None:
        """Stop the worker's process (or download) and remove its scratch folder."""
        log.info("stopping worker %s", worker.worker_id)
        if worker.packed:
            if worker.loading is not None and not worker.loading.done():
                worker.loading.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await worker.loading
            if worker.shared is not None:
                shared, worker.shared = worker.shared, None
                self.shared.leave_soon(shared, worker.worker_id)
            return
        if worker.fetch is not None:
            worker.fetch.cancel()  # the download itself goes on for other workers that wait
        if worker.process is not None:
            await children.stop(worker.process, grace_s=10.0)
        if worker.channel is not None:
            await worker.channel.close()
        # The worker's own folder (Triton's generated model repository); its log stays.
        shutil.rmtree(self.scratch_dir(worker), ignore_errors=True)

    def scratch_dir(self, worker: Worker) -> Path:
        return self.config.state_dir / "workers" / worker.worker_id
