"""Which models a shared worker unloads (or waits for) to make room: the pure decision, as a
table."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from workers.torch_worker.eviction import Resident, RoomPlan, plan_room

MIB = 2**20
FITS, WAIT, REFUSED = "fits", "wait", "refused"


def idle(name: str, mib: int, last_used: int) -> Resident:
    return Resident(name, mib * MIB, in_flight=0, last_used=last_used)


def busy(name: str, mib: int, last_used: int, in_flight: int = 1) -> Resident:
    return Resident(name, mib * MIB, in_flight=in_flight, last_used=last_used)


def pinned(name: str, mib: int) -> Resident:
    """The serving copy of the model being reloaded with a changed config."""
    return Resident(name, mib * MIB, pinned=True)


def releasing(name: str, mib: int, in_flight: int = 1) -> Resident:
    """Being unloaded on request, or a replaced copy finishing its requests."""
    return Resident(name, mib * MIB, in_flight=in_flight, releasing=True)


def awaited(name: str, mib: int, last_used: int, waiting: int = 1) -> Resident:
    """Just loaded for requests that have not started on it yet."""
    return Resident(name, mib * MIB, last_used=last_used, waiting=waiting)


def yielding(name: str, mib: int, last_used: int, in_flight: int = 0, waiting: int = 0) -> Resident:
    """Chosen to make room: admits nothing new; `waiting` requests wait for its next load."""
    return Resident(
        name, mib * MIB, in_flight=in_flight, last_used=last_used, waiting=waiting, yielding=True
    )


@dataclass(frozen=True)
class Case:
    id: str
    needed_mib: int
    residents: tuple[Resident, ...]
    budget_mib: int
    outcome: str = FITS
    evict: tuple[str, ...] = ()
    drain: tuple[str, ...] = ()


CASES = (
    Case("no budget: everything fits", 10_000, (idle("a", 500, 1),), 0),
    Case("room left: nothing unloaded", 1, (idle("a", 1, 1), idle("b", 1, 2)), 3),
    Case("exactly full after the load is fine", 1, (idle("a", 1, 1), idle("b", 1, 2)), 3),
    Case("least recently used goes first", 1, (idle("a", 1, 5), idle("b", 1, 2)), 2, evict=("b",)),
    Case(
        "as many as it takes, oldest first",
        3,
        (idle("a", 1, 3), idle("b", 1, 1), idle("c", 1, 2), idle("d", 1, 4)),
        4,
        evict=("b", "c", "a"),
    ),
    Case(
        "a model with a request in flight is never taken, even the oldest",
        1,
        (busy("old", 1, 1), idle("newer", 1, 2)),
        2,
        evict=("newer",),
    ),
    Case(
        "the copy a reload replaces is never taken",
        1,
        (pinned("replacing", 1), idle("b", 1, 9)),
        2,
        evict=("b",),
    ),
    Case(
        "a model requests wait to run on (its load just finished) is never taken",
        1,
        (awaited("just-loaded", 1, 1), idle("b", 1, 9)),
        2,
        evict=("b",),
    ),
    Case(
        "a model being unloaded is never taken",
        1,
        (releasing("going", 1), idle("b", 1, 9)),
        2,
        evict=("b",),
    ),
    Case(
        "a yielding model, once idle, goes first whatever its use",
        1,
        (idle("old", 1, 1), yielding("chosen", 1, 9, waiting=2)),
        2,
        evict=("chosen",),
    ),
    Case(
        "idle ones are not enough: nothing is unloaded, the busy one drains",
        3,
        (busy("a", 2, 1), idle("b", 1, 2)),
        4,
        WAIT,
        drain=("a",),
    ),
    Case(
        "every resident busy: the least recently used drains, only as many as needed",
        1,
        (busy("new", 1, 9), busy("old", 1, 1), busy("mid", 1, 5)),
        3,
        WAIT,
        drain=("old",),
    ),
    Case(
        "a model already yielding keeps draining before an older one",
        1,
        (busy("old", 1, 1), yielding("chosen", 1, 5, in_flight=2, waiting=3)),
        2,
        WAIT,
        drain=("chosen",),
    ),
    Case(
        "an unload in progress will make the room: wait, drain nobody",
        1,
        (releasing("going", 1), busy("b", 1, 1)),
        2,
        WAIT,
    ),
    Case(
        "requests about to run hold the room: wait for them, drain the rest",
        2,
        (awaited("just-loaded", 1, 9), busy("b", 1, 1)),
        2,
        WAIT,
        drain=("b",),
    ),
    Case("more than the whole budget", 5, (), 4, REFUSED),
    Case(
        "beside the copy it replaces it can never fit: refused at once",
        3,
        (pinned("self", 2), idle("b", 1, 1)),
        4,
        REFUSED,
    ),
    Case(
        "a big idle model makes room for a small one alone",
        1,
        (idle("big", 3, 1), idle("small", 1, 0)),
        4,
        evict=("small",),
    ),
)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_plan_room(case: Case) -> None:
    plan = plan_room("new", case.needed_mib * MIB, case.residents, case.budget_mib * MIB)
    outcome = FITS if plan.fits else WAIT if plan.wait else REFUSED
    assert outcome == case.outcome, plan.refusal
    assert plan.refused is (case.outcome == REFUSED)
    assert (plan.evict, plan.drain) == (case.evict, case.drain)
    if case.outcome != FITS:
        assert plan.refusal.startswith("model 'new' needs ")


def test_a_wait_says_the_numbers_and_what_holds_the_memory() -> None:
    plan = plan_room("new", 3 * MIB, (busy("a", 2, 1, in_flight=3), idle("b", 1, 2)), 4 * MIB)
    assert plan == RoomPlan(drain=("a",), wait=True, refusal=plan.refusal)
    assert plan.refusal == (
        "model 'new' needs 3 MiB but the worker's memory budget is 4 MiB with 3 MiB in use: "
        "2 MiB by 1 model(s) that cannot be unloaded now (a (2 MiB, 3 request(s) in flight)), "
        "1 MiB by idle ones that would not make enough room"
    )


def test_each_kind_of_holder_is_named_with_why() -> None:
    residents = (pinned("p", 1), releasing("r", 1), awaited("w", 1, 1, waiting=2))
    plan = plan_room("new", 2 * MIB, residents, 4 * MIB)
    assert plan.wait
    assert (
        "(p (1 MiB, serving while its new copy loads), r (1 MiB, being unloaded), "
        "w (1 MiB, 2 request(s) waiting to run on it))"
    ) in plan.refusal


def test_a_model_bigger_than_the_budget_is_refused_as_such() -> None:
    plan = plan_room("huge", 5 * MIB, (), 4 * MIB)
    assert plan.refused and not plan.fits
    assert plan.refusal == (
        "model 'huge' needs 5 MiB, more than the worker's whole memory budget of 4 MiB"
    )
