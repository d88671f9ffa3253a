"""Which of the workers the autoscaler wants may start: a pure function of what each region
has room for.

A region runs only what fits. Two limits, both per region:

- `max_replicas` (the region's spec): worker processes over all deployments. Every track keeps
  its floor (what placement reserved); what is above the floors is handed out in key order.
  A packed track's workers are models in shared processes: memory alone holds them back.
- memory: a new worker needs its version's footprint (measured when a worker of it first
  served; estimated before that), and may start only where the region's free memory holds it
  now. Workers already running are never stopped for another's sake unless they are *idle*
  (a deployment that may scale to zero, nothing in flight for a whole stable window, no
  request held): those are stopped least recently used first (drained: Envoy stops sending
  them requests, the agent stops them once the gateway confirmed), and the worker that
  needed the room starts once their memory is free (room goes to the longest waiting first).
  What does not fit waits, with the reason,
  and its requests go to the deployment's other allowed regions meanwhile (cold-start-aware
  routing).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from meshline.keys import PlacedTrackKey
from meshline.quantity import gib


@dataclass(frozen=True)
class RegionBudget:
    max_replicas: int = 0  # 0 = unlimited
    # Memory a new worker may still take now; None = not known yet (the region's agent has not
    # reported its machine): memory does not hold anything back then.
    memory_free_bytes: int | None = None
    # What draining workers use: free soon, so nothing more is stopped to make that room.
    memory_draining_bytes: int = 0
    memory_budget_bytes: int = 0


@dataclass(frozen=True)
class Demand:
    key: PlacedTrackKey
    wanted: int
    floor: int
    running: int  # workers now (not draining)
    footprint_bytes: int  # what one more worker will use
    memory_bytes: int = 0  # what its running workers use: freed if it is stopped
    # It may be stopped to make room (idle, may scale to zero), and when it last had traffic.
    evictable: bool = False
    last_active: float = 0.0
    version: str = ""  # for the reason: "version 'v1' needs 1.1 GiB"
    # Since when it has wanted more workers than it runs (inf: it does not): room goes to the
    # longest waiting first, so the room an eviction frees goes to the wake that asked for it.
    waiting_since: float = math.inf
    # Models loaded into shared worker processes: held to memory, not to the process cap.
    packed: bool = False


@dataclass(frozen=True)
class Admission:
    granted: dict[PlacedTrackKey, int]
    problems: dict[PlacedTrackKey, str] = field(default_factory=dict)
    # Idle tracks stopped to make room (their regions go to zero, drained).
    evicted: frozenset[PlacedTrackKey] = frozenset()


def admit(demands: Iterable[Demand], budgets: Mapping[str, RegionBudget]) -> Admission:
    by_region: dict[str, list[Demand]] = {}
    for demand in sorted(demands, key=lambda d: d.key):
        by_region.setdefault(demand.key.region, []).append(demand)
    granted: dict[PlacedTrackKey, int] = {}
    problems: dict[PlacedTrackKey, str] = {}
    evicted: set[PlacedTrackKey] = set()
    for region, region_demands in by_region.items():
        budget = budgets.get(region, RegionBudget())
        counted = _within_replicas(region, region_demands, budget.max_replicas, problems)
        granted.update(counted)
        if budget.memory_free_bytes is not None:
            _within_memory(region, region_demands, budget, granted, problems, evicted)
    return Admission(granted, problems, frozenset(evicted))


def _within_replicas(
    region: str, demands: list[Demand], limit: int, problems: dict[PlacedTrackKey, str]
) -> dict[PlacedTrackKey, int]:
    """Each track keeps its floor; what is above the floors is handed out in key order."""
    out = {d.key: d.wanted for d in demands}
    if limit <= 0:
        return out
    processes = [d for d in demands if not d.packed]
    spare = limit - sum(d.floor for d in processes)
    for d in processes:
        extra = max(0, d.wanted - d.floor)
        given = max(0, min(extra, spare))
        spare -= given
        out[d.key] = d.floor + given
        if given < extra:
            problems[d.key] = (
                f"region '{region}' is at capacity (max_replicas {limit}): "
                f"{out[d.key]} of {d.wanted} wanted workers run"
            )
    return out


def _within_memory(
    region: str,
    demands: list[Demand],
    budget: RegionBudget,
    granted: dict[PlacedTrackKey, int],
    problems: dict[PlacedTrackKey, str],
    evicted: set[PlacedTrackKey],
) -> None:
    """New workers start only where they fit now: floors first, then the rest, in key order;
    idle tracks are stopped (least recently used first) to make room that is missing."""
    free = budget.memory_free_bytes or 0
    coming = budget.memory_draining_bytes  # being freed already
    admitted = {d.key: d.running for d in demands}
    by_wait = sorted(demands, key=lambda d: (d.waiting_since, d.key))
    for up_to_floor in (True, False):
        for d in by_wait:
            if d.key in evicted:
                continue
            target = min(granted[d.key], d.floor) if up_to_floor else granted[d.key]
            new = target - admitted[d.key]
            if new <= 0:
                continue
            need = new * d.footprint_bytes
            fits = new if need <= free else free // max(1, d.footprint_bytes)
            free -= fits * d.footprint_bytes
            admitted[d.key] += fits
            if fits == new:
                continue
            short = (new - fits) * d.footprint_bytes
            covered = min(coming, short)  # room that stopping workers free soon
            coming -= covered
            stopping = _make_room(d, demands, short - covered, evicted)
            coming += max(0, sum(s.memory_bytes for s in stopping) - (short - covered))
            evicted.update(s.key for s in stopping)
            for s in stopping:
                granted[s.key] = 0
            problems[d.key] = _reason(region, d, budget, admitted[d.key], free, stopping, covered)
    for d in demands:
        if d.key not in evicted:
            granted[d.key] = min(granted[d.key], max(admitted[d.key], 0))


def _make_room(
    d: Demand, demands: list[Demand], missing: int, evicted: set[PlacedTrackKey]
) -> list[Demand]:
    """The idle tracks to stop, least recently used first, for `missing` bytes; none when
    stopping every idle one would not make room for even one worker of `d`."""
    if missing <= 0:
        return []
    candidates = sorted(
        (
            c
            for c in demands
            if c.evictable and c.key != d.key and c.key not in evicted and c.running > 0
        ),
        key=lambda c: (c.last_active, c.key),
    )
    chosen: list[Demand] = []
    freed = 0
    for c in candidates:
        if freed >= missing:
            break
        chosen.append(c)
        freed += c.memory_bytes
    if freed < min(missing, d.footprint_bytes):
        return []
    return chosen


def _reason(
    region: str,
    d: Demand,
    budget: RegionBudget,
    running: int,
    free: int,
    stopping: list[Demand],
    covered: int,
) -> str:
    what = f"version '{d.version}'" if d.version else "a worker"
    head = (
        f"region '{region}' has {gib(max(free, 0))} free of its {gib(budget.memory_budget_bytes)} "
        f"memory budget, {what} needs {gib(d.footprint_bytes)}: {running} of "
        f"{d.wanted} wanted workers run"
    )
    if stopping:
        names = ", ".join(f"'{s.key.name}'" for s in stopping)
        return f"{head}; stopping idle workers of {names} (least recently used) to make room"
    if covered:
        return f"{head}; waiting for stopping workers to free {gib(covered)}"
    return head
