"""Which loaded models a shared worker unloads to make room for another: a pure decision.

The rule (Triton's and MLServer's users expect it; Seldon Core v2 overcommits the same way):
least recently used first, and only idle models, never one with a request in flight, one a
request waits to run on (its load just finished), or one being replaced or unloaded.

When the idle models are not enough but busy ones would be, the load waits rather than fail at
once: the busy models it needs (least recently used first) stop admitting requests (new ones
wait for their next load), their requests in flight finish, and the plan is made again. Only a
load that cannot fit at all (bigger than the budget, or beside a copy it replaces) is refused at
once; the repository bounds the wait. Nothing is unloaded until the whole room is there, so a
refused load never costs a neighbour its warm model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meshline.quantity import gib


@dataclass(frozen=True)
class Resident:
    """A model holding memory in the worker now."""

    name: str
    footprint_bytes: int
    in_flight: int = 0
    # Larger is more recent: a counter the repository bumps on every request it admits.
    last_used: int = 0
    # The copy a load of a changed config replaces: it serves until the new one is in, so its
    # memory stays taken for the whole load.
    pinned: bool = False
    # Requests waiting to run on it: its load has just finished, they have not started yet.
    waiting: int = 0
    # Being unloaded on request, or a replaced copy finishing its requests: it goes on its own.
    releasing: bool = False
    # Chosen to make room by a load that waits: it admits no new request (those wait for its
    # next load, so `waiting` does not hold it) and is unloaded once idle.
    yielding: bool = False

    @property
    def held(self) -> bool:
        """Not ours to take: replaced, going on its own, or about to run waiting requests."""
        return self.pinned or self.releasing or (self.waiting > 0 and not self.yielding)

    @property
    def evictable(self) -> bool:
        return self.in_flight == 0 and not self.held

    @property
    def drainable(self) -> bool:
        """Busy now, idle once its requests in flight finish (if it admits no more)."""
        return self.in_flight > 0 and not self.held


@dataclass(frozen=True)
class RoomPlan:
    """What a load does about memory now.

    - fits: unload `evict` (least recently used first, maybe none) and load.
    - wait: stop `drain` admitting requests, wait for a change (a request finished, an unload
      done), plan again; `refusal` says why it does not fit yet, for when the wait runs out.
    - refused: `refusal` says why it can never fit while this load runs.
    """

    evict: tuple[str, ...] = ()
    drain: tuple[str, ...] = ()
    wait: bool = False
    refusal: str = ""

    @property
    def fits(self) -> bool:
        return not self.wait and not self.refusal

    @property
    def refused(self) -> bool:
        return bool(self.refusal) and not self.wait


def plan_room(
    model: str, needed_bytes: int, residents: Sequence[Resident], budget_bytes: int
) -> RoomPlan:
    """What to unload (or wait for) so that `model` (needing `needed_bytes`) fits in
    `budget_bytes`.

    A budget of 0 means none: everything fits. `residents` must not include `model`'s own
    memory unless it stays resident while the new copy loads (a replacement: pinned).
    """
    if budget_bytes <= 0:
        return RoomPlan()
    if needed_bytes > budget_bytes:
        return RoomPlan(
            refusal=f"model '{model}' needs {gib(needed_bytes)}, more than the worker's whole "
            f"memory budget of {gib(budget_bytes)}"
        )
    used = sum(r.footprint_bytes for r in residents)
    excess = used + needed_bytes - budget_bytes
    if excess <= 0:
        return RoomPlan()
    # Models already yielding for this load go first: they stopped admitting for it.
    idle = sorted((r for r in residents if r.evictable), key=_order)
    evict: list[str] = []
    for resident in idle:
        evict.append(resident.name)
        excess -= resident.footprint_bytes
        if excess <= 0:
            return RoomPlan(evict=tuple(evict))
    refusal = _refusal(model, needed_bytes, residents, budget_bytes)
    pinned_bytes = sum(r.footprint_bytes for r in residents if r.pinned)
    if needed_bytes + pinned_bytes > budget_bytes:
        return RoomPlan(refusal=refusal)
    # It fits once busy and held models let go (every one but the pinned copy does).
    excess -= sum(r.footprint_bytes for r in residents if r.releasing and not r.pinned)
    drain: list[str] = []
    for resident in sorted((r for r in residents if r.drainable), key=_order):
        if excess <= 0:
            break
        drain.append(resident.name)
        excess -= resident.footprint_bytes
    return RoomPlan(drain=tuple(drain), wait=True, refusal=refusal)


def _order(resident: Resident) -> tuple[bool, int, str]:
    return (not resident.yielding, resident.last_used, resident.name)


def _refusal(model: str, needed: int, residents: Sequence[Resident], budget: int) -> str:
    used = sum(r.footprint_bytes for r in residents)
    held = [r for r in residents if not r.evictable]
    held_bytes = sum(r.footprint_bytes for r in held)
    shown = ", ".join(f"{r.name} {_why(r)}" for r in sorted(held, key=lambda r: r.name)[:5])
    more = f" and {len(held) - 5} more" if len(held) > 5 else ""
    return (
        f"model '{model}' needs {gib(needed)} but the worker's memory budget is "
        f"{gib(budget)} with {gib(used)} in use: {gib(held_bytes)} by {len(held)} "
        f"model(s) that cannot be unloaded now ({shown}{more}), {gib(used - held_bytes)} by "
        "idle ones that would not make enough room"
    )


def _why(resident: Resident) -> str:
    size = gib(resident.footprint_bytes)
    if resident.pinned:
        return f"({size}, serving while its new copy loads)"
    if resident.releasing:
        return f"({size}, being unloaded)"
    if resident.in_flight:
        return f"({size}, {resident.in_flight} request(s) in flight)"
    return f"({size}, {resident.waiting} request(s) waiting to run on it)"
