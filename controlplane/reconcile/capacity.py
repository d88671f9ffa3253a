"""Each region's memory as capacity admission and status see it, from its agent's report. Pure.

- budget: the region's `memory_budget` (a share of its machine's memory, 60% by default, or
  an amount);
- used: what its workers use, as measured (a worker not measured yet counts its version's
  footprint, so a worker that is starting already holds its room);
- free: the budget left, never more than the machine has available beyond a reserve for
  Envoy, the agent and the system (two regions on one machine see each other's workers there).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass

from controlplane.autoscale.admission import RegionBudget
from controlplane.ir.build import is_serving
from controlplane.policy import ResolvedDeployment
from controlplane.store.footprints import Footprint
from meshline.keys import DeploymentKey, TrackKey
from meshline.packing import SHARED_FOOTPRINT_RUNTIME
from meshline.quantity import MemoryBudget, QuantityError, parse_bytes, parse_memory_budget
from meshline.v1 import agent_pb2, resources_pb2

DEFAULT_MEMORY_BUDGET = MemoryBudget(share=0.6)
MIB = 2**20
# A worker of a version never measured: the runtime's own cost plus twice the artifact
# (the file read, then the model built from it). Measured PSS of an idle worker on this
# project's machines: Torch ~150 MiB (sharing the standby interpreter's imports), Triton more.
BASE_FOOTPRINT_BYTES = {"torch": 256 * MIB, "triton": 768 * MIB}
# A model loaded into a shared worker: its own tensors and TorchScript graph; the process's cost
# is counted once per shared worker (AgentReport.shared_workers), not per model.
SHARED_BASE_FOOTPRINT_BYTES = 16 * MIB
DRAINING = agent_pb2.WorkerState.WORKER_STATE_DRAINING


@dataclass(frozen=True)
class RegionMemory:
    total_bytes: int
    available_bytes: int
    budget_bytes: int
    used_bytes: int
    draining_bytes: int
    free_bytes: int
    cpus: int
    workers: int
    gpus: tuple[agent_pb2.GpuMemory, ...] = ()

    def budget(self, max_replicas: int) -> RegionBudget:
        return RegionBudget(max_replicas, self.free_bytes, self.draining_bytes, self.budget_bytes)

    def to_proto(self) -> resources_pb2.RegionCapacity:
        return resources_pb2.RegionCapacity(
            memory_total_bytes=self.total_bytes,
            memory_available_bytes=self.available_bytes,
            memory_budget_bytes=self.budget_bytes,
            memory_used_bytes=self.used_bytes,
            memory_free_bytes=self.free_bytes,
            cpus=self.cpus,
            workers=self.workers,
            gpus=[
                resources_pb2.GpuCapacity(
                    name=g.name, total_bytes=g.total_bytes, used_bytes=g.used_bytes
                )
                for g in self.gpus
            ],
        )


def memory_reserve(total_bytes: int) -> int:
    """Kept free on the machine for Envoy, the agent, the control plane and the system."""
    return max(512 * MIB, total_bytes // 20)


def estimated_footprint(version: resources_pb2.ModelVersion, packed: bool = False) -> int:
    """What a worker of a version never measured is planned to use (`packed`: what its model
    adds to a shared worker)."""
    if version.HasField("external"):
        return 0
    if packed:
        base = SHARED_BASE_FOOTPRINT_BYTES
    else:
        base = BASE_FOOTPRINT_BYTES.get(version.runtime, BASE_FOOTPRINT_BYTES["torch"])
    return base + 2 * version.size_bytes


def footprint_key(version: resources_pb2.ModelVersion, packed: bool = False) -> tuple[str, str]:
    """Footprints are recorded per artifact and way of running it."""
    return (version.sha256, SHARED_FOOTPRINT_RUNTIME if packed else version.runtime)


def version_footprint(
    version: resources_pb2.ModelVersion,
    measured: Mapping[tuple[str, str], Footprint],
    packed: bool = False,
) -> int:
    found = measured.get(footprint_key(version, packed))
    return found.memory_bytes if found is not None else estimated_footprint(version, packed)


def declared_memory(deployments: Iterable[resources_pb2.Deployment]) -> dict[DeploymentKey, int]:
    """Each deployment's `resources.memory`, in bytes, where it sets one."""
    out = {}
    for d in deployments:
        if d.spec.resources.memory:
            try:
                out[DeploymentKey(d.spec.environment, d.metadata.name)] = parse_bytes(
                    d.spec.resources.memory
                )
            except QuantityError:  # checked at apply
                continue
    return out


def track_footprints(
    versions: Mapping[TrackKey, resources_pb2.ModelVersion],
    measured: Mapping[tuple[str, str], Footprint],
    declared: Mapping[DeploymentKey, int],
    packed: Container[TrackKey] = frozenset(),
) -> dict[TrackKey, int]:
    """What one more worker of each track is planned to use: the larger of what its
    deployment declares and its version's footprint (measured, else estimated); for a
    `packed` track, what its model adds to a shared worker."""
    return {
        key: max(
            version_footprint(version, measured, key in packed),
            declared.get(DeploymentKey(key.environment, key.name), 0),
        )
        for key, version in versions.items()
    }


def track_versions(
    resolved: Iterable[ResolvedDeployment], models: Iterable[resources_pb2.Model]
) -> dict[TrackKey, resources_pb2.ModelVersion]:
    """The model version every placed track runs."""
    versions = {(m.metadata.name, v.name): v for m in models for v in m.spec.versions}
    out = {}
    for r in resolved:
        for track in r.tracks:
            version = versions.get((r.model, track.version))
            if version is not None:
                out[TrackKey(r.environment, r.name, track.name)] = version
    return out


def region_memory(
    spec: resources_pb2.RegionSpec,
    report: agent_pb2.AgentReport | None,
    footprints: Mapping[TrackKey, int],
) -> RegionMemory | None:
    """None until the region's agent reported its machine's memory (an agent that cannot
    read it reports 0: unknown, so memory holds nothing back there, as before any report)."""
    if report is None or not report.machine.memory_total_bytes:
        return None
    machine = report.machine
    total = machine.memory_total_bytes
    try:
        budget = parse_memory_budget(spec.memory_budget, DEFAULT_MEMORY_BUDGET).bytes_of(total)
    except QuantityError:  # checked at apply; a region stored before that check counts as default
        budget = DEFAULT_MEMORY_BUDGET.bytes_of(total)
    used = draining = workers = 0
    for w in report.workers:
        if w.runtime == "external":
            continue
        planned = footprints.get(TrackKey(w.environment, w.deployment, w.track), 0)
        uses = max(w.memory_bytes, planned)
        if not uses:  # a worker no placed track runs any more
            uses = SHARED_BASE_FOOTPRINT_BYTES if w.shared_worker else BASE_FOOTPRINT_BYTES["torch"]
        used += uses
        if w.state == DRAINING:
            draining += uses
        elif not w.shared_worker:
            workers += 1
    for shared in report.shared_workers:
        # The process's own cost (interpreter, torch), beyond the models counted above.
        used += max(0, shared.memory_bytes - shared.model_memory_bytes)
        workers += 1
    room = machine.memory_available_bytes - memory_reserve(total)
    free = max(0, min(budget - used, room))
    return RegionMemory(
        total,
        machine.memory_available_bytes,
        budget,
        used,
        draining,
        free,
        machine.cpus,
        workers,
        tuple(machine.gpus),
    )


# A footprint is raised when a serving worker of its artifact is seen this much larger (the
# agent's figure may predate the model's load, or the first requests grow it).
FOOTPRINT_GROWTH = 1.1


def new_measurements(
    reports: Mapping[str, agent_pb2.AgentReport],
    versions: Mapping[TrackKey, resources_pb2.ModelVersion],
    known: Mapping[tuple[str, str], Footprint],
    now: str,
) -> list[Footprint]:
    """Footprints to record: the largest serving worker of each artifact, where none was
    recorded yet or the one recorded is clearly smaller."""
    out: dict[tuple[str, str], Footprint] = {}
    for region, report in sorted(reports.items()):
        for w in report.workers:
            version = versions.get(TrackKey(w.environment, w.deployment, w.track))
            if version is None or not version.sha256 or not w.memory_bytes or not is_serving(w):
                continue
            key = footprint_key(version, packed=bool(w.shared_worker))
            before = out.get(key) or known.get(key)
            if before is not None and w.memory_bytes <= before.memory_bytes * FOOTPRINT_GROWTH:
                continue
            out[key] = Footprint(*key, w.memory_bytes, region, now)
    return list(out.values())
