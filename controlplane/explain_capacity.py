"""Whether a deployment's workers fit where it is placed, asked before it is applied: what
`meshline plan` and `apply --dry-run` say per region. Pure.

Capacity admission (`controlplane.autoscale.admission.admit`) decides, as it will when the
deployment is applied: each region is asked about the workers the deployment starts with (its
versions' footprints: measured, estimated or declared) next to what the region runs now. The
answer is one of: its workers start; idle workers of other deployments are stopped to make
room (least recently used first, drained) and then they start; they wait, Pending, with the
region's numbers; or nothing starts until the deployment is invoked (`min_replicas: 0`), with
what its first request would do now. The deployments of one request are planned in order,
each one taking the room it starts with from the next.

A plan is a forecast from the region's state now: the autoscaler decides again when the
workers start (other requests may have taken or freed room by then), and the idle workers it
stops are those idle at that moment. Idle here: a deployment that may scale to zero with
nothing in flight to its workers now.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from controlplane.autoscale.admission import Admission, Demand, RegionBudget, admit
from controlplane.policy import ResolvedDeployment
from controlplane.policy.scaling import ScalingSettings
from controlplane.reconcile.capacity import RegionMemory
from meshline.keys import DeploymentKey, PlacedTrackKey
from meshline.v1.resources_pb2 import RegionCapacityPlan

STARTS = "starts"
MAKES_ROOM = "makes-room"
WAITS = "waits"
UNTIL_INVOKED = "until-invoked"

MEASURED = "measured"
ESTIMATED = "estimated"
DECLARED = "declared"


@dataclass(frozen=True)
class RegionRoom:
    """A region as capacity admission sees it now: its memory (None before its agent reported
    its machine: memory holds nothing back then), its `max_replicas` (0: no cap), and the
    tracks it runs (each keeping the workers it runs; idle ones may be stopped for room)."""

    memory: RegionMemory | None = None
    max_replicas: int = 0
    running: tuple[Demand, ...] = ()


@dataclass(frozen=True)
class TrackFootprint:
    """What one worker of a deployment's track is planned to use, and where the figure is
    from (MEASURED, ESTIMATED or DECLARED)."""

    track: str
    version: str
    footprint_bytes: int
    source: str = ESTIMATED
    packed: bool = False


@dataclass(frozen=True)
class PlannedDeployment:
    resolved: ResolvedDeployment
    footprints: tuple[TrackFootprint, ...]


def starting_workers(settings: ScalingSettings) -> int:
    """Workers each of a deployment's tracks starts with in a region: `initial_replicas`
    (none by default) when it may scale to zero, else its floor (as the autoscaler's first
    want for a new track)."""
    if settings.scales_to_zero:
        return settings.initial_replicas
    floor = max(settings.min_replicas, 1 if settings.max_replicas else 0)
    return max(settings.initial_replicas, floor)


@dataclass
class _Region:
    """A region's room while the deployments of one request are planned in turn."""

    room: RegionRoom
    running: list[Demand] = field(default_factory=list)
    draining_bytes: int = 0

    def budget(self) -> RegionBudget:
        memory = self.room.memory
        if memory is None:
            return RegionBudget(self.room.max_replicas)
        base = memory.budget(self.room.max_replicas)
        return replace(base, memory_draining_bytes=base.memory_draining_bytes + self.draining_bytes)


def capacity_plans(
    planned: Sequence[PlannedDeployment], rooms: Mapping[str, RegionRoom]
) -> dict[DeploymentKey, list[RegionCapacityPlan]]:
    """Per deployment (in `planned` order: each takes the room it starts with from the next),
    per region it is placed in: whether its workers fit now and what happens when they do
    not. A deactivated deployment runs nothing: no entry."""
    regions: dict[str, _Region] = {}
    out: dict[DeploymentKey, list[RegionCapacityPlan]] = {}
    for order, item in enumerate(planned):
        resolved = item.resolved
        if resolved.deactivated:
            continue
        plans = out.setdefault(resolved.key, [])
        for name in resolved.placement.regions:
            region = regions.get(name)
            if region is None:
                room = rooms.get(name, RegionRoom())
                region = regions[name] = _Region(room, list(room.running))
            plans.append(_plan_region(name, region, item, order))
    return out


def _plan_region(
    name: str, region: _Region, item: PlannedDeployment, order: int
) -> RegionCapacityPlan:
    resolved = item.resolved
    key = resolved.key
    own = {d.key.track: d for d in region.running if (d.key.environment, d.key.name) == key}
    others = [d for d in region.running if (d.key.environment, d.key.name) != key]
    workers = starting_workers(resolved.scaling)
    invoked = workers == 0 and resolved.scaling.scales_to_zero
    wanted = 1 if invoked else workers
    demands = [
        Demand(
            PlacedTrackKey(resolved.environment, resolved.name, fp.track, name),
            wanted=wanted,
            floor=0 if invoked else min(resolved.scaling.min_replicas, wanted),
            running=own[fp.track].running if fp.track in own else 0,
            footprint_bytes=fp.footprint_bytes,
            memory_bytes=own[fp.track].memory_bytes if fp.track in own else 0,
            version=fp.version,
            # Ahead of anything already waiting: the plan asks whether it fits now.
            waiting_since=-math.inf,
            packed=fp.packed,
        )
        for fp in item.footprints
    ]
    admission = admit([*others, *demands], {name: region.budget()})
    problems = [admission.problems[d.key] for d in demands if d.key in admission.problems]
    stops = sorted(f"{k.environment}/{k.name}" for k in admission.evicted)
    footprint = max(item.footprints, key=lambda fp: fp.footprint_bytes, default=None)
    memory = region.room.memory
    plan = RegionCapacityPlan(
        region=name,
        workers=0 if invoked else workers,
        footprint_bytes=footprint.footprint_bytes if footprint is not None else 0,
        footprint_source=footprint.source if footprint is not None else "",
        memory_known=memory is not None,
        memory_free_bytes=memory.free_bytes if memory is not None else 0,
        memory_budget_bytes=memory.budget_bytes if memory is not None else 0,
    )
    if invoked:
        plan.outcome = UNTIL_INVOKED
        plan.reason = _first_request(problems, stops)
        return plan
    if not problems:
        plan.outcome = STARTS
    elif stops:
        plan.outcome = MAKES_ROOM
        plan.stops.extend(stops)
    else:
        plan.outcome = WAITS
    plan.reason = "; ".join(problems)
    _take_room(region, demands, admission, others)
    return plan


def _first_request(problems: Sequence[str], stops: Sequence[str]) -> str:
    """What the first request would do in the region now."""
    if not problems:
        return "its first request starts a worker, which fits now"
    if stops:
        return (
            f"its first request would stop idle workers of {', '.join(stops)} to make room "
            f"({'; '.join(problems)})"
        )
    return f"its first request would wait for room ({'; '.join(problems)})"


def _take_room(
    region: _Region, demands: Sequence[Demand], admission: Admission, others: Sequence[Demand]
) -> None:
    """The region as the next deployment of the request finds it: these workers running
    (what was granted), the idle ones stopped for them draining."""
    started = []
    for d in demands:
        granted = admission.granted.get(d.key, 0)
        started.append(
            replace(
                d,
                wanted=granted,
                floor=min(d.floor, granted),
                running=granted,
                memory_bytes=granted * d.footprint_bytes,
                waiting_since=math.inf,
            )
        )
    kept = [d for d in others if d.key not in admission.evicted]
    region.draining_bytes += sum(d.memory_bytes for d in others if d.key in admission.evicted)
    # What the workers started take from the free memory (admission counts running workers
    # as already in the region's use, which `free_bytes` was measured before).
    memory = region.room.memory
    if memory is not None:
        newly = sum(
            max(0, s.running - next((o.running for o in region.running if o.key == s.key), 0))
            * s.footprint_bytes
            for s in started
        )
        region.room = replace(
            region.room, memory=replace(memory, free_bytes=max(0, memory.free_bytes - newly))
        )
    region.running = [*kept, *started]
