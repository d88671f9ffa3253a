"""Which models a shared worker unloads to make room: the pure decision, as a table."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from workers.torch_worker.eviction import Resident, RoomPlan, plan_room

MIB = 2**20


def idle(name: str, mib: int, last_used: int) -> Resident:
    return Resident(name, mib * MIB, in_flight=0, last_used=last_used)


def busy(name: str, mib: int, last_used: int, in_flight: int = 1) -> Resident:
    return Resident(name, mib * MIB, in_flight=in_flight, last_used=last_used)


def pinned(name: str, mib: int) -> Resident:
    return Resident(name, mib * MIB, pinned=True)


@dataclass(frozen=True)
class Case:
    id: str
    needed_mib: int
    residents: tuple[Resident, ...]
    budget_mib: int
    evict: tuple[str, ...] = ()
    fits: bool = True


CASES = (
    Case("no budget: everything fits", 10_000, (idle("a", 500, 1),), 0),
    Case("room left: nothing unloaded", 1, (idle("a", 1, 1), idle("b", 1, 2)), 3),
    Case("exactly full after the load is fine", 1, (idle("a", 1, 1), idle("b", 1, 2)), 3),
    Case("least recently used goes first", 1, (idle("a", 1, 5), idle("b", 1, 2)), 2, ("b",)),
    Case(
        "as many as it takes, oldest first",
        3,
        (idle("a", 1, 3), idle("b", 1, 1), idle("c", 1, 2), idle("d", 1, 4)),
        4,
        ("b", "c", "a"),
    ),
    Case(
        "a model with a request in flight is never taken, even the oldest",
        1,
        (busy("old", 1, 1), idle("newer", 1, 2)),
        2,
        ("newer",),
    ),
    Case(
        "a pinned model (being replaced or unloaded) is never taken",
        1,
        (pinned("replacing", 1), idle("b", 1, 9)),
        2,
        ("b",),
    ),
    Case(
        "not enough idle memory: nothing is unloaded",
        3,
        (busy("a", 2, 1), idle("b", 1, 2)),
        4,
        (),
        False,
    ),
    Case("more than the whole budget", 5, (), 4, (), False),
    Case(
        "a big idle model makes room for a small one alone",
        1,
        (idle("big", 3, 1), idle("small", 1, 0)),
        4,
        ("small",),
    ),
)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_plan_room(case: Case) -> None:
    plan = plan_room("new", case.needed_mib * MIB, case.residents, case.budget_mib * MIB)
    assert plan.fits is case.fits, plan.refusal
    assert plan.evict == case.evict


def test_a_refusal_names_the_numbers_and_what_holds_the_memory() -> None:
    plan = plan_room("new", 3 * MIB, (busy("a", 2, 1, in_flight=3), idle("b", 1, 2)), 4 * MIB)
    assert plan == RoomPlan(refusal=plan.refusal)
    assert plan.refusal == (
        "model 'new' needs 3 MiB but the worker's memory budget is 4 MiB with 3 MiB in use: "
        "2 MiB by 1 model(s) that cannot be unloaded now (a (2 MiB, 3 request(s) in flight)), "
        "1 MiB by idle ones that would not make enough room"
    )


def test_a_model_bigger_than_the_budget_is_refused_as_such() -> None:
    plan = plan_room("huge", 5 * MIB, (), 4 * MIB)
    assert plan.refusal == (
        "model 'huge' needs 5 MiB, more than the worker's whole memory budget of 4 MiB"
    )
