"""Which loaded models a shared worker unloads to make room for another: a pure decision.

The rule (Triton's and MLServer's users expect it; Seldon Core v2 overcommits the same way):
least recently used first, and only idle models, never one with a request in flight or one
being loaded, replaced or unloaded. If unloading every idle model would still not make room,
nothing is unloaded and the load is refused with the numbers, so a refused load never costs a
neighbour its warm model.
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
    # Being loaded, replaced or unloaded: its memory is taken, and it is not ours to take.
    pinned: bool = False

    @property
    def evictable(self) -> bool:
        return self.in_flight == 0 and not self.pinned


@dataclass(frozen=True)
class RoomPlan:
    """Models to unload (least recently used first), or why the load cannot fit."""

    evict: tuple[str, ...] = ()
    refusal: str = ""

    @property
    def fits(self) -> bool:
        return not self.refusal


def plan_room(
    model: str, needed_bytes: int, residents: Sequence[Resident], budget_bytes: int
) -> RoomPlan:
    """What to unload so that `model` (needing `needed_bytes`) fits in `budget_bytes`.

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
    idle = sorted((r for r in residents if r.evictable), key=lambda r: (r.last_used, r.name))
    evict: list[str] = []
    for resident in idle:
        evict.append(resident.name)
        excess -= resident.footprint_bytes
        if excess <= 0:
            return RoomPlan(evict=tuple(evict))
    held = [r for r in residents if not r.evictable]
    held_bytes = sum(r.footprint_bytes for r in held)
    shown = ", ".join(f"{r.name} {_why(r)}" for r in sorted(held, key=lambda r: r.name)[:5])
    more = f" and {len(held) - 5} more" if len(held) > 5 else ""
    return RoomPlan(
        refusal=f"model '{model}' needs {gib(needed_bytes)} but the worker's memory budget is "
        f"{gib(budget_bytes)} with {gib(used)} in use: {gib(held_bytes)} by {len(held)} "
        f"model(s) that cannot be unloaded now ({shown}{more}), {gib(used - held_bytes)} by "
        "idle ones that would not make enough room"
    )


def _why(resident: Resident) -> str:
    if resident.in_flight:
        return f"({gib(resident.footprint_bytes)}, {resident.in_flight} request(s) in flight)"
    return f"({gib(resident.footprint_bytes)}, being loaded or unloaded)"
