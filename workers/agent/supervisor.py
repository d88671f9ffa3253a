"""Match running worker processes to the desired workloads of the region.

A workload is one track of a deployment in an environment: track "" runs the deployment's own
version, other tracks run the versions of its traffic-split and mirror legs next to it.

Replacement within a track (a new revision, e.g. another version) is make-before-break:
workers of a new revision start first; the old ones are marked draining only once enough new
ones are healthy, and are stopped only when the control plane confirms (from Envoy's ACK) that
the gateway no longer routes to them. A crashed worker is restarted with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import grpc

from meshline.process import children
from meshline.process.ports import free_port
from meshline.v1 import agent_pb2
from workers.agent.artifacts import ArtifactCache, ArtifactFetchError
from workers.agent.config import AgentConfig
from workers.agent.envoy_process import GatewayView
from workers.agent.launch import (
    RUNTIME_EXTERNAL,
    RUNTIME_TRITON,
    WorkerPorts,
    runtime_of,
    worker_command,
)
from workers.agent.probes import PROBE_CHANNEL_OPTIONS, health_problem
from workers.agent.standby_pool import StandbyPool
from workers.agent.worker import (
    State,
    Worker,
    WorkloadKey,
    new_worker_id,
    wanted_workers,
    workload_key,
)
from workers.agent.worker_load import parse_worker_load

log = logging.getLogger(__name__)
# Clusters of a region's own workers only (see controlplane/translate/names.py).
LOCAL_MARK = "~local"

UNHEALTHY_AFTER_FAILED_PROBES = 3  # a busy worker may answer late; a dead one is seen at once
MAX_RESTART_BACKOFF_S = 10.0
STABLE_AFTER_S = 30.0
# A starting worker is probed, and the gateway re-read while a healthy one is not routable yet,
# this often: a cold start (a client is waiting) must not lose half a probe interval twice.
FAST_PROBE_S = 0.05
# Consecutive unanswered reads of the gateway's admin API before its hosts count as unroutable.
MISSED_READS_UNROUTABLE = 3


@dataclass
class Supervisor:
    config: AgentConfig
    on_change: Callable[[], None]
    # Whether the control plane can currently confirm drains; without it a draining worker
    # may still be in the gateway's last config, so it is never stopped on a timer.
    connected: Callable[[], bool] = lambda: True
    # The region's Envoy's view of its hosts (None: admin unreachable; no callable: no gateway,
    # e.g. in tests). A replacement counts as serving only once the gateway itself sees it
    # healthy; the view's in-flight counts are reported as each worker's load.
    gateway_view: Callable[[], Awaitable[GatewayView | None]] | None = None
    workers: dict[str, Worker] = field(default_factory=dict)
    desired: dict[WorkloadKey, agent_pb2.Workload] = field(default_factory=dict)
    # Envoy's view of each cluster leading to other regions (see AgentReport.clusters).
    _forwarding: dict[str, agent_pb2.ClusterHealth] = field(default_factory=dict)
    # Envoy's per-cluster traffic (see AgentReport.traffic).
    _traffic: dict[str, agent_pb2.ClusterTraffic] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    # A worker just turned healthy: read the gateway now, not after the interval's sleep.
    _gateway_wake: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: bool = False
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _http: aiohttp.ClientSession | None = None  # for scraping worker metrics
    standby: StandbyPool = field(init=False)
    artifacts: ArtifactCache = field(init=False)

    def __post_init__(self) -> None:
        self.standby = StandbyPool(
            self.config.standby_workers, self.config.state_dir / "workers" / "standby"
        )
        self.artifacts = ArtifactCache(
            self.config.state_dir / "artifacts", self.config.controlplane
        )

    # -- inputs -------------------------------------------------------------------------

    def set_desired(self, workloads: list[agent_pb2.Workload]) -> None:
        self.desired = {workload_key(w): w for w in workloads}
        self._wake.set()

    def release(self, worker_ids: list[str]) -> None:
        """The gateway no longer routes to these draining workers: stop them."""
        for worker_id in worker_ids:
            worker = self.workers.get(worker_id)
            if worker is not None and worker.draining:
                task = asyncio.create_task(self._retire(worker), name=f"retire-{worker_id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    # -- outputs ------------------------------------------------------------------------

    def report(self) -> agent_pb2.AgentReport:
        return agent_pb2.AgentReport(
            workers=[
                agent_pb2.WorkerReport(
                    worker_id=w.worker_id,
                    deployment=w.workload.deployment,
                    environment=w.workload.environment,
                    revision=w.revision,
                    grpc_address=w.grpc_address,
                    http_address=w.http_address,
                    state=State.WORKER_STATE_DRAINING if w.draining else State.ValueType(w.state),
                    restarts=w.restarts,
                    last_error=w.last_error,
                    consecutive_failures=w.failures,
                    gateway_routable=self._serving(w) and not w.draining,
                    version=w.workload.model_version,
                    inflight=w.inflight,
                    track=w.workload.track,
                    queued=w.load.queued,
                    requests=w.load.requests,
                    batches=w.load.batches,
                    runtime=w.runtime,
                )
                for w in sorted(self.workers.values(), key=lambda w: w.worker_id)
            ],
            clusters=[self._forwarding[name] for name in sorted(self._forwarding)],
            traffic=[self._traffic[name] for name in sorted(self._traffic)],
        )

    # -- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        # The gateway is read on its own cadence: a worker slow to answer its health check
        # (busy, i.e. exactly when load matters) must not delay the in-flight counts.
        watcher = asyncio.create_task(self._watch_gateway(), name="gateway-view")
        last_full = 0.0
        try:
            while not self._stopping:
                # Cleared before the steps: a wake-up during them (new desired state, an exit)
                # makes the next pass start at once instead of being lost.
                self._wake.clear()
                # Every interval all workers; in between, only the ones still starting.
                full = time.monotonic() - last_full >= self.config.health_interval_s
                steps = (
                    self._reconcile,
                    self._probe_all if full else self._probe_starting,
                    self._prepare_standby,
                )
                for step in steps:
                    try:
                        await step()
                    except Exception:  # never let one bad step kill the agent or block the other
                        log.exception("supervisor step %s failed", step.__name__)
                if full:
                    last_full = time.monotonic()
                interval = FAST_PROBE_S if self._starting() else self.config.health_interval_s
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), interval)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _prepare_standby(self) -> None:
        if not self._starting():  # never compete with a real start for CPU
            await self.standby.fill()

    async def _reconcile(self) -> None:
        changed = self._adopt()
        now = time.monotonic()
        for key, workload in self.desired.items():
            try:
                changed |= await self._reconcile_workload(key, workload)
            except Exception:  # one broken workload must not block the others
                log.exception("cannot reconcile %s", key)
        for worker in list(self.workers.values()):
            if worker.key not in self.desired and not worker.draining:
                self._drain(worker)
                changed = True
            if worker.draining:
                overdue = now - worker.drain_started > self.config.max_drain_s
                if not worker.running or (overdue and self.connected()):
                    await self._retire(worker)
                    changed = True
            elif not worker.running:
                if not worker.exit_noted:
                    self._note_exit(worker)
                    changed = True
                if now >= worker.restart_at:
                    await self._restart(worker)
                    changed = True
        if changed:
            self.on_change()

    def _adopt(self) -> bool:
        """Move running workers to the track that now wants exactly their revision.

        Promoting a canary swaps versions between tracks (v2 becomes the main version, v1 a
        split leg): the processes already serve the right models, so they change track instead
        of being drained while replacements load. Only workers their own track no longer wants
        (track gone, or a different revision there) move.
        """
        changed = False
        for key, workload in self.desired.items():
            have = sum(
                1
                for w in self.workers.values()
                if w.key == key and not w.draining and w.revision == workload.revision
            )
            for worker in list(self.workers.values()):
                if have >= wanted_workers(workload):
                    break
                home = self.desired.get(worker.key)
                if (
                    worker.draining
                    or worker.key == key
                    or worker.revision != workload.revision
                    or (worker.workload.deployment, worker.workload.environment) != key[:2]
                    or (home is not None and home.revision == worker.revision)
                ):
                    continue
                log.info("worker %s moves from %s to %s", worker.worker_id, worker.key, key)
                worker.workload = workload
                # Its track's clusters are other ones: it serves there only once the gateway
                # says so, and until then it must not let the track's old workers drain.
                worker.gateway_routable = False
                have += 1
                changed = True
        return changed

    async def _reconcile_workload(self, key: WorkloadKey, workload: agent_pb2.Workload) -> bool:
        """Start, drain or replace this workload's workers; True when something changed."""
        changed = False
        current = [w for w in self.workers.values() if w.key == key and not w.draining]
        fresh = [w for w in current if w.revision == workload.revision]
        stale = [w for w in current if w.revision != workload.revision]
        wanted = wanted_workers(workload)
        for _ in range(wanted - len(fresh)):
            fresh.append(await self._start_new(workload))
            changed = True
        surplus = sorted(fresh, key=lambda w: w.state == State.WORKER_STATE_HEALTHY)
        for worker in surplus[: max(0, len(fresh) - wanted)]:
            self._drain(worker)
            changed = True
        healthy_fresh = sum(1 for w in fresh if self._serving(w))
        if stale and healthy_fresh >= wanted:
            for worker in stale:
                self._drain(worker)
            changed = True
        return changed

    def _serving(self, worker: Worker) -> bool:
        healthy = worker.state == State.WORKER_STATE_HEALTHY
        return healthy and (worker.gateway_routable or self.gateway_view is None)

    def _note_exit(self, worker: Worker) -> None:
        """Record why a worker stopped and when it may start again (once per exit)."""
        ran_s = time.monotonic() - worker.started_at
        reason = children.exit_reason(worker.log_path)
        if worker.process is None:  # never ran (no process, or its model could not be fetched)
            worker.failures += 1
            worker.last_error = f"did not start ({ran_s:.1f}s): {reason}"
        else:
            worker.failures = 1 if ran_s > STABLE_AFTER_S else worker.failures + 1
            code = worker.process.returncode
            worker.last_error = f"exited with code {code} after {ran_s:.1f}s: {reason}"
        backoff = min(0.5 * 2 ** (worker.failures - 1), MAX_RESTART_BACKOFF_S)
        worker.restart_at = time.monotonic() + backoff
        worker.state = State.WORKER_STATE_UNHEALTHY
        worker.exit_noted = True
        log.warning(
            "worker %s %s; restarting in %.1fs", worker.worker_id, worker.last_error, backoff
        )

    def _drain(self, worker: Worker) -> None:
        log.info("draining worker %s (%s rev %s)", worker.worker_id, worker.key, worker.revision)
        worker.draining = True
        worker.drain_started = time.monotonic()

    async def _retire(self, worker: Worker) -> None:
        if self.workers.pop(worker.worker_id, None) is None:
            return
        log.info("stopping worker %s", worker.worker_id)
        if worker.fetch is not None:
            worker.fetch.cancel()  # the download itself goes on for other workers that wait
        if worker.process is not None:
            await children.stop(worker.process, grace_s=10.0)
        if worker.channel is not None:
            await worker.channel.close()
        # The worker's own folder (Triton's generated model repository); its log stays.
        shutil.rmtree(self._scratch_dir(worker), ignore_errors=True)
        self.on_change()

    def _scratch_dir(self, worker: Worker) -> Path:
        return self.config.state_dir / "workers" / worker.worker_id

    async def _start_new(self, workload: agent_pb2.Workload) -> Worker:
        worker_id = new_worker_id(self.config.region, workload)
        while worker_id in self.workers:
            worker_id = new_worker_id(self.config.region, workload)
        external = runtime_of(workload) == RUNTIME_EXTERNAL
        worker = Worker(
            worker_id=worker_id,
            workload=workload,
            host=self.config.host,
            grpc_port=0 if external else free_port(self.config.host),
            http_port=0 if external else free_port(self.config.host),
            metrics_port=free_port(self.config.host)
            if runtime_of(workload) == RUNTIME_TRITON
            else 0,
            log_path=self.config.state_dir / "workers" / f"{worker_id}.log",
        )
        self.workers[worker_id] = worker
        if external:
            log.info("watching external server %s as %s", worker.grpc_address, worker_id)
            worker.channel = grpc.aio.insecure_channel(worker.grpc_address)
        else:
            await self._spawn(worker)
        return worker

    async def _restart(self, worker: Worker) -> None:
        worker.restarts += 1
        log.warning(
            "restarting worker %s (restart %d): %s",
            worker.worker_id,
            worker.restarts,
            worker.last_error,
        )
        await self._spawn(worker)

    async def _spawn(self, worker: Worker) -> None:
        worker.state = State.WORKER_STATE_STARTING
        worker.failed_probes = 0
        worker.exit_noted = False
        worker.started_at = time.monotonic()
        worker.process = None
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
            self._wake.set()
            return
        if worker.worker_id in self.workers and not worker.draining and not self._stopping:
            await self._launch(worker, path)
        self._wake.set()

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
                    self.config.host, worker.grpc_port, worker.http_port, worker.metrics_port
                ),
                scratch_dir=self._scratch_dir(worker),
            )
            worker.process = await self.standby.take(args, worker.log_path)
            if worker.process is None:
                worker.process = await children.spawn(args, worker.log_path)
            else:
                log.info("worker %s runs in a standby interpreter", worker.worker_id)
        except (OSError, ValueError) as exc:
            # Recorded like a crash (backoff, reason in status), never raised into the loop
            # that serves the other workers.
            worker.process = None
            children.mark_failure(worker.log_path, f"cannot start the worker: {exc}")
            log.error("cannot start worker %s: %s", worker.worker_id, exc)
            return
        watcher = asyncio.create_task(self._wake_on_exit(worker.process))
        self._tasks.add(watcher)
        watcher.add_done_callback(self._tasks.discard)
        if worker.channel is None:
            worker.channel = grpc.aio.insecure_channel(
                f"{self.config.host}:{worker.grpc_port}", options=PROBE_CHANNEL_OPTIONS
            )

    async def _wake_on_exit(self, process: asyncio.subprocess.Process) -> None:
        """React to a crash at once instead of at the next health probe."""
        await process.wait()
        self._wake.set()

    # -- health -------------------------------------------------------------------------

    async def _probe_all(self) -> None:
        await self._probe_some(list(self.workers.values()))

    async def _probe_starting(self) -> None:
        await self._probe_some([w for w in self.workers.values() if self._is_starting(w)])

    async def _probe_some(self, workers: list[Worker]) -> None:
        results = await asyncio.gather(*(self._probe(w) for w in workers))
        if any(results):
            self.on_change()

    @staticmethod
    def _is_starting(worker: Worker) -> bool:
        return (
            worker.state == State.WORKER_STATE_STARTING
            and worker.running
            and not worker.external
            and not worker.draining
        )

    def _starting(self) -> bool:
        return any(self._is_starting(w) for w in self.workers.values())

    def _awaiting_gateway(self) -> bool:
        """A worker is healthy but the gateway does not route to it yet (it soon will)."""
        return any(
            w.state == State.WORKER_STATE_HEALTHY and not w.gateway_routable and not w.draining
            for w in self.workers.values()
        )

    async def _watch_gateway(self) -> None:
        """Every probe interval: one read of the gateway's view, applied to all workers."""
        if self.gateway_view is None:
            return
        missed = 0
        while not self._stopping:
            try:
                view = await self.gateway_view()
                # One admin read that timed out on a busy machine says nothing about the
                # workers: reporting them unroutable would make every other region's gateway
                # drop this region at once. Only a run of misses (Envoy gone) counts.
                missed = 0 if view is not None else missed + 1
                if view is not None or missed >= MISSED_READS_UNROUTABLE:
                    self.apply_gateway_view(view)
            except Exception:  # a bad read must not stop the next ones
                log.exception("cannot read the gateway's view of the workers")
            fast = self._awaiting_gateway()
            self._gateway_wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._gateway_wake.wait(),
                    FAST_PROBE_S if fast else self.config.health_interval_s,
                )

    def apply_gateway_view(self, view: GatewayView | None) -> bool:
        """Take the gateway's routable hosts and in-flight counts; report when any changed.

        None (admin unreachable, several reads in a row) counts as nothing routable and nothing
        in flight.
        """
        changed = False
        forwarding = self._forwarding_view(view) if view is not None else {}
        if forwarding != self._forwarding:
            self._forwarding = forwarding
            changed = True
        traffic = view.cluster_stats if view is not None else {}
        if traffic != self._traffic:
            self._traffic = dict(traffic)
            changed = True
        for w in list(self.workers.values()):
            addresses = (w.grpc_address, w.http_address)
            routable = view is not None and set(addresses) <= view.routable
            inflight = view.inflight_of(*addresses) if view is not None else 0
            if routable != w.gateway_routable:
                w.gateway_routable = routable
                changed = True
                self._wake.set()  # may let old workers drain
            if inflight != w.inflight:
                w.inflight = inflight
                changed = True
        if changed:
            self.on_change()
        return changed

    def _forwarding_view(self, view: GatewayView) -> dict[str, agent_pb2.ClusterHealth]:
        """Clusters clients use (not `~local`): routable hosts, and the traffic that leaves
        the region (to other regions' gateways, to the activator). Not to a worker: a retired
        worker's host keeps its counters in Envoy for a moment, and counting them as new
        traffic would wake a region that just scaled to zero."""
        out = {}
        for cluster in set(view.routable_by_cluster) | set(view.traffic):
            if LOCAL_MARK in cluster:
                continue
            hosts = view.traffic.get(cluster, {})
            away = [t for host, t in hosts.items() if view.leaves_region(host)]
            routable = view.routable_by_cluster.get(cluster, frozenset())
            out[cluster] = agent_pb2.ClusterHealth(
                cluster=cluster,
                routable_hosts=len(routable),
                inflight=sum(t.active for t in away),
                requests=sum(t.total for t in away),
                routable_hostnames=view.hostnames_of(routable),
            )
        return out

    async def _probe(self, worker: Worker) -> bool:
        """Update one worker's state; True when it changed."""
        before = worker.state
        if not worker.running:
            return False  # _reconcile records the exit and schedules the restart
        if worker.channel is None:
            return False
        problem = await health_problem(worker)
        if not problem:
            worker.failed_probes = 0
            worker.state = State.WORKER_STATE_HEALTHY
            worker.last_error = ""
        elif worker.state == State.WORKER_STATE_HEALTHY:
            worker.failed_probes += 1
            if worker.failed_probes >= UNHEALTHY_AFTER_FAILED_PROBES:
                worker.state = State.WORKER_STATE_UNHEALTHY
                if worker.external:
                    worker.last_error = problem
        elif worker.external and worker.last_error != problem:
            worker.last_error = problem  # nothing else would say why it never served
            worker.state = State.WORKER_STATE_UNHEALTHY
            return True
        answered = worker.load.requests
        if worker.state == State.WORKER_STATE_HEALTHY:
            # The queue and batch figures alone are no reason to report: under load they change
            # at every read, and each report makes the control plane rebuild; they travel with
            # the next one. Newly answered requests are: they are the autoscaler's sign of
            # life (idle time before scale-to-zero), at most one report per probe interval.
            await self._read_load(worker)
        if before != worker.state:
            self._wake.set()  # a healthy new worker may let old ones drain
            if worker.state == State.WORKER_STATE_HEALTHY:
                self._gateway_wake.set()  # the gateway will route to it soon: watch closely
            return True
        return worker.load.requests != answered

    async def _read_load(self, worker: Worker) -> bool:
        """Scrape the worker's own metrics (queue, batches); True when the figures changed."""
        url = worker.metrics_url
        if not url or self._stopping:
            return False
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0))
        try:
            async with self._http.get(url) as reply:
                text = await reply.text()
            load = parse_worker_load(text, worker.runtime, worker.workload.deployment)
        except (aiohttp.ClientError, TimeoutError, ValueError, RuntimeError) as exc:
            log.debug("cannot read the metrics of %s at %s: %s", worker.worker_id, url, exc)
            return False
        if load == worker.load:
            return False
        worker.load = load
        return True

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        await asyncio.gather(
            self.standby.stop(), *(self._retire(w) for w in list(self.workers.values()))
        )
        if self._http is not None:
            await self._http.close()
