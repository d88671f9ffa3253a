"""Match running worker processes to the desired workloads of the region: the I/O shell.

A workload is one track of a deployment in an environment: track "" runs the deployment's own
version, other tracks run the versions of its traffic-split and mirror legs next to it.

What to do is decided by pure functions (`decide.py`: starts, moves, drains, retirements,
restarts; `exits.py`: backoff; `health.py`: what a probe's answer means; `gateway_facts.py`:
what Envoy's view says); this module takes their snapshots and carries out their answers:
processes (`worker_processes.py`), health probes (`probes.py`), worker metrics
(`load_scrape.py`) and Envoy's admin (`gateway_watch.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from meshline.keys import TrackKey
from meshline.process import children
from meshline.v1 import agent_pb2
from workers.agent import decide as core
from workers.agent.artifacts import NO_MESH, ArtifactCache, MeshDialer
from workers.agent.config import AgentConfig
from workers.agent.envoy_process import GatewayView
from workers.agent.exits import note_exit, note_shared_exit
from workers.agent.gateway_facts import (
    WorkerAddresses,
    gateway_facts,
    local_clusters,
)
from workers.agent.gateway_watch import FAST_PROBE_S, GatewayWatch
from workers.agent.load_scrape import LoadScraper
from workers.agent.probes import probe, shared_model_problems
from workers.agent.resources import ResourceWatch
from workers.agent.standby_pool import StandbyPool
from workers.agent.worker import State, Worker, model_key, wanted_workers, workload_key
from workers.agent.worker_processes import WorkerProcesses

log = logging.getLogger(__name__)


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
    # The control plane's mesh port, for model downloads (none: nothing can be fetched).
    mesh: MeshDialer = NO_MESH
    workers: dict[str, Worker] = field(default_factory=dict)
    desired: dict[TrackKey, agent_pb2.Workload] = field(default_factory=dict)
    # EDS hostnames of hosts outside the region (DesiredState.remote_hostnames).
    remote_hostnames: frozenset[str] = frozenset()
    # EDS hostnames of hosts that only hold requests (DesiredState.holding_hostnames).
    holding_hostnames: frozenset[str] = frozenset()
    # The control plane has said which clusters and hosts are which (a DesiredState arrived).
    told: bool = False
    # Edge TLS: when the certificate the client listener serves expires (RFC 3339; "" none).
    edge_certificate_expires_at: str = ""
    # Envoy's view of each cluster leading to other regions (see AgentReport.clusters).
    _forwarding: dict[str, agent_pb2.ClusterHealth] = field(default_factory=dict)
    # Envoy's per-cluster traffic (see AgentReport.traffic).
    _traffic: dict[str, agent_pb2.ClusterTraffic] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    # A worker just turned healthy: read the gateway now, not after the interval's sleep.
    _gateway_wake: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: bool = False
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _load: LoadScraper = field(default_factory=LoadScraper)
    processes: WorkerProcesses = field(init=False)
    resources: ResourceWatch = field(init=False)

    def __post_init__(self) -> None:
        self.processes = WorkerProcesses(self.config, self._wake.set, self._still_wanted, self.mesh)
        self.resources = ResourceWatch(self._worker_pids)

    @property
    def standby(self) -> StandbyPool:
        return self.processes.standby

    @property
    def artifacts(self) -> ArtifactCache:
        return self.processes.artifacts

    # -- inputs -------------------------------------------------------------------------

    def set_desired(
        self,
        workloads: Iterable[agent_pb2.Workload],
        remote_hostnames: Iterable[str] = (),
        holding_hostnames: Iterable[str] = (),
    ) -> None:
        self.desired = {workload_key(w): w for w in workloads}
        self.remote_hostnames = frozenset(remote_hostnames)
        self.holding_hostnames = frozenset(holding_hostnames)
        self.told = True
        self._wake.set()

    def take_desired(self, desired: agent_pb2.DesiredState) -> None:
        """The control plane's desired state for the region."""
        self.set_desired(desired.workloads, desired.remote_hostnames, desired.holding_hostnames)

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
                w.report(
                    routable=self._serving(w) and not w.draining,
                    memory_bytes=w.load.memory_bytes
                    if w.packed
                    else self.resources.memory_of(w.worker_id, w.pid),
                )
                for w in sorted(self.workers.values(), key=lambda w: w.worker_id)
            ],
            clusters=[self._forwarding[name] for name in sorted(self._forwarding)],
            traffic=[self._traffic[name] for name in sorted(self._traffic)],
            edge_certificate_expires_at=self.edge_certificate_expires_at,
            machine=self.resources.machine(),
            shared_workers=self._shared_reports(),
        )

    def _shared_reports(self) -> list[agent_pb2.SharedWorkerReport]:
        out = []
        for shared in self.processes.shared.live():
            models = [w for w in self.workers.values() if w.packed and w.shared is shared]
            out.append(
                agent_pb2.SharedWorkerReport(
                    shared_worker=shared.shared_id,
                    memory_bytes=self.resources.memory_of(shared.shared_id, shared.pid),
                    model_memory_bytes=sum(w.load.memory_bytes for w in models),
                    models=len(shared.models),
                    isolated=shared.isolated,
                )
            )
        return out

    def _worker_pids(self) -> dict[str, int]:
        pids = {w.worker_id: w.pid for w in self.workers.values() if w.pid is not None}
        return {**pids, **self.processes.shared.pids()}

    def edge_certificate_served(self, expires_at: str) -> None:
        """The client listener serves another certificate (or none): report it."""
        self.edge_certificate_expires_at = expires_at
        self.on_change()

    # -- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        # Memory is measured on its own cadence (and in a thread): never in the way of a pass.
        measuring = asyncio.create_task(self.resources.run(), name="resources")
        watcher = None
        if self.gateway_view is not None:
            watch = GatewayWatch(
                self.gateway_view,
                self.apply_gateway_view,
                self._awaiting_gateway,
                self.config.health_interval_s,
                self._gateway_wake,
            )
            watcher = asyncio.create_task(watch.run(), name="gateway-view")
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
            for task in (watcher, measuring):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _prepare_standby(self) -> None:
        if not self._starting():  # never compete with a real start for CPU
            await self.standby.fill()

    async def _reconcile(self) -> None:
        """Decide on a snapshot and carry the actions out. A second look follows starts, so a
        start that failed at once is noted (and its backoff begins) in the same pass."""
        now = time.monotonic()
        actions = self._decide(now)
        changed = bool(actions)
        await self._carry_out(actions)
        if any(isinstance(a, core.Start) for a in actions):
            again = self._decide(now)
            changed |= bool(again)
            await self._carry_out(again)
        if changed:
            self.on_change()

    def _decide(self, now: float) -> tuple[core.Action, ...]:
        return core.decide(
            [self._facts(w) for w in self.workers.values()],
            {
                key: core.Want(workload.revision, wanted_workers(workload))
                for key, workload in self.desired.items()
            },
            now,
            core.Conditions(connected=self.connected(), max_drain_s=self.config.max_drain_s),
        )

    def _facts(self, worker: Worker) -> core.WorkerFacts:
        return core.WorkerFacts(
            worker_id=worker.worker_id,
            key=worker.key,
            revision=worker.revision,
            healthy=worker.state == State.WORKER_STATE_HEALTHY,
            serving=self._serving(worker),
            running=worker.running,
            draining=worker.draining,
            drain_started=worker.drain_started,
            exit_noted=worker.exit_noted,
            restart_at=worker.restart_at,
        )

    async def _carry_out(self, actions: Iterable[core.Action]) -> None:
        for action in actions:
            try:
                await self._do(action)
            except Exception:  # one broken workload must not block the others
                log.exception("cannot carry out %s", action)

    async def _do(self, action: core.Action) -> None:
        if isinstance(action, core.Start):
            await self._start_new(self.desired[action.key])
            return
        worker = self.workers.get(action.worker_id)
        if worker is None:
            return
        if isinstance(action, core.MoveTrack):
            log.info("worker %s moves from %s to %s", worker.worker_id, worker.key, action.key)
            worker.workload = self.desired[action.key]
            # Its track's clusters are other ones: it serves there only once the gateway
            # says so, and until then it must not let the track's old workers drain.
            worker.gateway_routable = False
        elif isinstance(action, core.Drain):
            self._drain(worker)
        elif isinstance(action, core.Retire):
            await self._retire(worker)
        elif isinstance(action, core.NoteExit):
            self._note_exit(worker)
        elif isinstance(action, core.Restart):
            await self._restart(worker)

    def _serving(self, worker: Worker) -> bool:
        healthy = worker.state == State.WORKER_STATE_HEALTHY
        return healthy and (worker.gateway_routable or self.gateway_view is None)

    def _still_wanted(self, worker: Worker) -> bool:
        """A worker whose model just arrived: launch it only if it is still to run."""
        return worker.worker_id in self.workers and not worker.draining and not self._stopping

    def _note_exit(self, worker: Worker) -> None:
        """Record why a worker stopped and when it may start again (once per exit)."""
        shared = worker.shared if worker.packed else None
        died = shared is not None and shared.returncode is not None and not shared.stopping
        if shared is not None and died and (not worker.load_error or worker.load_crashed):
            # Its shared worker died: the model(s) it was loading or running first are named.
            shared_note = note_shared_exit(
                worker.failures,
                ran_s=time.monotonic() - worker.started_at,
                deployment=worker.workload.deployment,
                shared_id=shared.shared_id,
                returncode=shared.returncode,
                reason=shared.exit_reason(),
                culprits=shared.culprits(),
            )
            note = shared_note.note
            if shared_note.isolate:
                # Every replica and every later wake of this model goes alone.
                self.processes.shared.isolate(model_key(worker), note.last_error)
        else:
            note = note_exit(
                worker.failures,
                ran_s=time.monotonic() - worker.started_at,
                returncode=None if worker.process is None else worker.process.returncode,
                reason=children.exit_reason(worker.log_path),
            )
        worker.failures, worker.last_error = note.failures, note.last_error
        worker.restart_at = time.monotonic() + note.backoff_s
        worker.state = State.WORKER_STATE_UNHEALTHY
        worker.exit_noted = True
        log.warning(
            "worker %s %s; restarting in %.1fs", worker.worker_id, worker.last_error, note.backoff_s
        )

    def _drain(self, worker: Worker) -> None:
        log.info("draining worker %s (%s rev %s)", worker.worker_id, worker.key, worker.revision)
        worker.draining = True
        worker.drain_started = time.monotonic()

    async def _retire(self, worker: Worker) -> None:
        if self.workers.pop(worker.worker_id, None) is None:
            return
        await self.processes.stop(worker)
        self.on_change()

    async def _start_new(self, workload: agent_pb2.Workload) -> Worker:
        worker = self.processes.new_worker(workload, taken=self.workers)
        self.workers[worker.worker_id] = worker
        await self.processes.start(worker)
        return worker

    async def _restart(self, worker: Worker) -> None:
        worker.restarts += 1
        worker.restart_reason = worker.last_error
        log.warning(
            "restarting worker %s (restart %d): %s",
            worker.worker_id,
            worker.restarts,
            worker.last_error,
        )
        await self.processes.spawn(worker)

    # -- health -------------------------------------------------------------------------

    async def _probe_all(self) -> None:
        await self._probe_some(list(self.workers.values()))

    async def _probe_starting(self) -> None:
        await self._probe_some([w for w in self.workers.values() if self._is_starting(w)])

    async def _probe_some(self, workers: list[Worker]) -> None:
        # Loaded packed models are asked of their shared worker at once, one call each.
        by_shared: dict[str, list[Worker]] = {}
        alone: list[Worker] = []
        for w in workers:
            if w.packed and w.loaded and w.shared is not None and w.running:
                by_shared.setdefault(w.shared.shared_id, []).append(w)
            else:
                alone.append(w)
        results = await asyncio.gather(
            *(self._probe(w) for w in alone),
            *(self._probe_shared(group) for group in by_shared.values()),
        )
        if any(results):
            self.on_change()

    async def _probe_shared(self, models: list[Worker]) -> bool:
        shared = models[0].shared
        assert shared is not None
        problems = await shared_model_problems(shared, {w.workload.deployment for w in models})
        changed = [await self._probe(w, problems[w.workload.deployment]) for w in models]
        return any(changed)

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

    async def _probe(self, worker: Worker, problem: str | None = None) -> bool:
        """Update one worker's state; True when it changed."""
        result = await probe(worker, self._load, read_load=not self._stopping, problem=problem)
        if result.state_changed:
            self._wake.set()  # a healthy new worker may let old ones drain
            if worker.state == State.WORKER_STATE_HEALTHY:
                self._gateway_wake.set()  # the gateway will route to it soon: watch closely
        return result.report

    # -- the gateway's view ---------------------------------------------------------------

    def apply_gateway_view(self, view: GatewayView | None) -> bool:
        """Take the gateway's routable hosts and in-flight counts; report when any changed.

        None (admin unreachable, several reads in a row) counts as nothing routable and nothing
        in flight.
        """
        facts = gateway_facts(
            view,
            [
                WorkerAddresses(
                    w.worker_id,
                    w.grpc_address,
                    w.http_address,
                    shared=w.packed,
                    clusters=frozenset(w.workload.local_clusters),
                )
                for w in self.workers.values()
            ],
            self._local_clusters(),
            self.remote_hostnames,
            self.holding_hostnames,
            told=self.told,
        )
        changed = False
        if facts.forwarding != self._forwarding:
            self._forwarding = dict(facts.forwarding)
            changed = True
        if facts.traffic != self._traffic:
            self._traffic = dict(facts.traffic)
            changed = True
        for worker_id, route in facts.workers.items():
            w = self.workers.get(worker_id)
            if w is None:
                continue
            if route.routable != w.gateway_routable:
                w.gateway_routable = route.routable
                changed = True
                self._wake.set()  # may let old workers drain
            if route.inflight != w.inflight:
                w.inflight = route.inflight
                changed = True
        if changed:
            self.on_change()
        return changed

    def _local_clusters(self) -> frozenset[str]:
        """Local clusters of the desired workloads, and of those draining workers were
        started for (the gateway may still hold them)."""
        return local_clusters(
            [*self.desired.values(), *(w.workload for w in self.workers.values())]
        )

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        await asyncio.gather(
            self.standby.stop(), *(self._retire(w) for w in list(self.workers.values()))
        )
        await self.processes.shared.stop()
        await self._load.close()
