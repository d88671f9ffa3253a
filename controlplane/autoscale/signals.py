"""One region's load on one deployment track, read from its agent's last report.

Concurrency is what Envoy has in flight to the track's own workers plus what enters the
region for it and goes elsewhere (other regions' gateways, the activator): a cold region
whose traffic is served next door still sees its demand and wakes up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from controlplane.autoscale.failures import CrashLoop, crash_looping
from controlplane.ir.build import is_serving
from controlplane.ir.index import ClusterIndex
from meshline.keys import TrackKey
from meshline.v1 import agent_pb2

State = agent_pb2.WorkerState


@dataclass(frozen=True)
class LoadSignal:
    concurrency: float = 0.0
    # Monotonic request counters by source (worker id or cluster): any rise is activity.
    counters: dict[str, int] = field(default_factory=dict)
    # A worker that is not draining is healthy and the region's Envoy routes to it.
    serving: bool = False
    workers: int = 0  # worker processes that are not draining
    problem: str = ""  # why a worker does not serve yet (its last error), if it said
    # Revisions with a serving worker, and workers that are crash-looping (not serving).
    serving_revisions: frozenset[str] = frozenset()
    crash_loops: tuple[CrashLoop, ...] = ()
    # Memory each of its workers uses as measured (0: not measured yet).
    worker_memory: tuple[int, ...] = ()

    def planned_memory(self, footprint_bytes: int) -> int:
        """What its workers hold as capacity admission counts it: each at least its
        footprint (what stopping them frees in the plan, as in the region's use)."""
        return sum(max(m, footprint_bytes) for m in self.worker_memory)


def load_signals(
    report: agent_pb2.AgentReport | None, workloads: Iterable[TrackKey], clusters: ClusterIndex
) -> dict[TrackKey, LoadSignal]:
    """`clusters`: the names the last IR gave each track's clusters (the report uses them)."""
    wanted = {TrackKey(*key) for key in workloads}
    workers: dict[TrackKey, list[agent_pb2.WorkerReport]] = {k: [] for k in wanted}
    if report is not None:
        for w in report.workers:
            key = TrackKey(w.environment, w.deployment, w.track)
            if key in workers and w.state != State.WORKER_STATE_DRAINING:
                workers[key].append(w)
    health = {c.cluster: c for c in report.clusters} if report is not None else {}
    out = {}
    for key in wanted:
        mine = workers[key]
        away = [health[name] for name in clusters.clients(key) if name in health]
        # The worker's own count of answered inference requests: Envoy's per-host counters
        # would also count other gateways' health probes forwarded to it.
        counters = {f"worker:{w.worker_id}": w.requests for w in mine}
        counters.update({f"cluster:{c.cluster}": c.requests for c in away})
        problem = next((w.last_error for w in mine if w.last_error), "")
        out[key] = LoadSignal(
            concurrency=float(sum(w.inflight for w in mine) + sum(c.inflight for c in away)),
            counters=counters,
            serving=any(is_serving(w) for w in mine),
            workers=len(mine),
            problem=problem,
            serving_revisions=frozenset(w.revision for w in mine if is_serving(w)),
            crash_loops=tuple(
                CrashLoop(w.revision, w.worker_id, w.last_error) for w in mine if crash_looping(w)
            ),
            worker_memory=tuple(w.memory_bytes for w in mine),
        )
    return out
