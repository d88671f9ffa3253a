"""Which wanted workers may start: the region's replica cap and its free memory, idle tracks
stopped least recently used first to make room. Table tests of the pure decision."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from controlplane.autoscale.admission import Demand, RegionBudget, admit
from meshline.keys import PlacedTrackKey

GIB = 2**30
MIB = 2**20


def key(name: str, region: str = "eu") -> PlacedTrackKey:
    return PlacedTrackKey("production", name, "", region)


def demand(
    name: str,
    wanted: int,
    running: int = 0,
    floor: int = 0,
    footprint: int = GIB,
    memory: int | None = None,
    idle: bool = False,
    last_active: float = 0.0,
    region: str = "eu",
) -> Demand:
    return Demand(
        key(name, region),
        wanted,
        floor,
        running,
        footprint,
        running * footprint if memory is None else memory,
        evictable=idle,
        last_active=last_active,
        version="v1",
    )


@dataclass(frozen=True)
class Case:
    demands: tuple[Demand, ...]
    budget: RegionBudget
    granted: dict[str, int]
    evicted: frozenset[str] = frozenset()
    problems: tuple[str, ...] = ()


CASES = {
    "memory unknown: nothing held back": Case((demand("a", 3),), RegionBudget(), {"a": 3}),
    "fits": Case((demand("a", 2),), RegionBudget(memory_free_bytes=2 * GIB), {"a": 2}),
    "only what fits starts; the reason names the numbers": Case(
        (demand("a", 3),),
        RegionBudget(memory_free_bytes=int(2.5 * GIB), memory_budget_bytes=8 * GIB),
        {"a": 2},
        problems=("a",),
    ),
    "running workers need no room": Case(
        (demand("a", 2, running=2),), RegionBudget(memory_free_bytes=0), {"a": 2}
    ),
    "scaling down needs no room": Case(
        (demand("a", 1, running=3),), RegionBudget(memory_free_bytes=0), {"a": 1}
    ),
    "floors before extras, whatever the key order": Case(
        (demand("a", 2, running=1), demand("b", 1, floor=1)),
        RegionBudget(memory_free_bytes=GIB),
        {"a": 1, "b": 1},
        problems=("a",),
    ),
    "an idle track is stopped for a wake, least recently used first": Case(
        (
            demand("new", 1),
            demand("old", 1, running=1, idle=True, last_active=10),
            demand("older", 1, running=1, idle=True, last_active=5),
        ),
        RegionBudget(memory_free_bytes=0, memory_budget_bytes=2 * GIB),
        # The woken one waits for the stopped worker's memory: nothing over the budget.
        {"new": 0, "old": 1, "older": 0},
        evicted=frozenset({"older"}),
        problems=("new",),
    ),
    "a busy track is never stopped": Case(
        (demand("new", 1), demand("busy", 1, running=1)),
        RegionBudget(memory_free_bytes=0),
        {"new": 0, "busy": 1},
        problems=("new",),
    ),
    "nothing is stopped when even all idle ones would not make room": Case(
        (demand("big", 1, footprint=4 * GIB), demand("idle", 1, running=1, idle=True)),
        RegionBudget(memory_free_bytes=GIB),
        {"big": 0, "idle": 1},
        problems=("big",),
    ),
    "memory being freed by draining workers stops nothing more": Case(
        (demand("new", 1), demand("idle", 1, running=1, idle=True)),
        RegionBudget(memory_free_bytes=0, memory_draining_bytes=GIB),
        {"new": 0, "idle": 1},
        problems=("new",),
    ),
    "just enough idle tracks are stopped": Case(
        (
            demand("new", 2),
            demand("i1", 1, running=1, idle=True, last_active=1),
            demand("i2", 1, running=1, idle=True, last_active=2),
            demand("i3", 1, running=1, idle=True, last_active=3),
        ),
        RegionBudget(memory_free_bytes=0),
        {"new": 0, "i1": 0, "i2": 0, "i3": 1},
        evicted=frozenset({"i1", "i2"}),
        problems=("new",),
    ),
    "replica cap first, then memory": Case(
        (demand("a", 4),),
        RegionBudget(max_replicas=3, memory_free_bytes=2 * GIB),
        {"a": 2},
        problems=("a",),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_admission(case: Case) -> None:
    got = admit(case.demands, {"eu": case.budget})
    assert {k.name: v for k, v in got.granted.items()} == case.granted
    assert {k.name for k in got.evicted} == case.evicted
    assert sorted(k.name for k in got.problems) == sorted(case.problems)


def test_the_reason_names_the_region_the_free_memory_and_what_the_version_needs() -> None:
    got = admit(
        [demand("a", 1, footprint=int(1.1 * GIB))],
        {"eu": RegionBudget(memory_free_bytes=400 * MIB, memory_budget_bytes=8 * GIB)},
    )
    assert got.problems[key("a")] == (
        "region 'eu' has 400 MiB free of its 8.0 GiB memory budget, version 'v1' needs "
        "1.1 GiB: 0 of 1 wanted workers run"
    )


def test_the_reason_names_the_idle_workers_stopped_to_make_room() -> None:
    got = admit(
        [demand("new", 1), demand("idle", 1, running=1, idle=True)],
        {"eu": RegionBudget(memory_free_bytes=0, memory_budget_bytes=GIB)},
    )
    assert got.problems[key("new")].endswith(
        "; stopping idle workers of 'idle' (least recently used) to make room"
    )


def test_regions_are_admitted_on_their_own() -> None:
    got = admit(
        [demand("a", 1, region="eu"), demand("a", 1, region="us")],
        {"eu": RegionBudget(memory_free_bytes=0), "us": RegionBudget(memory_free_bytes=GIB)},
    )
    assert got.granted == {key("a", "eu"): 0, key("a", "us"): 1}


def test_room_goes_to_the_longest_waiting_first_not_by_key() -> None:
    """The room an eviction freed goes to the wake that asked for it, even when the stopped
    track (key 'a') wants it back meanwhile."""
    a = Demand(key("a"), 1, 0, 0, GIB, waiting_since=20.0)
    b = Demand(key("b"), 1, 0, 0, GIB, waiting_since=10.0)
    got = admit([a, b], {"eu": RegionBudget(memory_free_bytes=GIB)})
    assert got.granted == {key("a"): 0, key("b"): 1}


def test_packed_models_are_not_processes_the_replica_cap_counts() -> None:
    """A region capped at 2 worker processes runs 2 dedicated workers and any number of models
    packed into shared workers, as memory allows."""
    packed = [Demand(key(f"p{i}"), 1, 0, 0, 4 * MIB, packed=True) for i in range(5)]
    got = admit(
        [demand("a", 1), demand("b", 1), demand("c", 1), *packed],
        {"eu": RegionBudget(max_replicas=2, memory_free_bytes=3 * GIB)},
    )
    assert got.granted == {
        key("a"): 1,
        key("b"): 1,
        key("c"): 0,
        **{key(f"p{i}"): 1 for i in range(5)},
    }
    assert "max_replicas 2" in got.problems[key("c")]
    # Memory still holds them back.
    tight = admit(packed, {"eu": RegionBudget(memory_free_bytes=9 * MIB)})
    assert sum(tight.granted.values()) == 2
