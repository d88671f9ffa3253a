"""In which order a gateway tries the regions a deployment runs in.

"nearest": the entry region itself, then regions in its country, then on its continent, then
the rest (by name within each group). "ordered": the routing policy's explicit order first.
Failover then keeps the first region plus the failover policy's regions (or all of them).
"""

from __future__ import annotations

from collections.abc import Sequence

from controlplane.policy.settings import (
    PREFERENCE_ORDERED,
    FailoverSettings,
    OffloadSettings,
    RoutingSettings,
)
from meshline.v1.resources_pb2 import Region


def distance(entry: Region, other: Region) -> int:
    """0 same region, 1 same country, 2 same continent, 3 elsewhere."""
    if entry.metadata.name == other.metadata.name:
        return 0
    if entry.spec.country and entry.spec.country.upper() == other.spec.country.upper():
        return 1
    if entry.spec.continent and entry.spec.continent.upper() == other.spec.continent.upper():
        return 2
    return 3


def preference_order(
    entry: Region, allowed: Sequence[Region], routing: RoutingSettings
) -> tuple[str, ...]:
    """Every allowed region, most preferred first, as seen from `entry`."""
    nearest = [
        r.metadata.name
        for r in sorted(allowed, key=lambda r: (distance(entry, r), r.metadata.name))
    ]
    if routing.region_preference != PREFERENCE_ORDERED:
        return tuple(nearest)
    explicit = [name for name in dict.fromkeys(routing.region_order) if name in nearest]
    return tuple(explicit + [name for name in nearest if name not in explicit])


def tier_order(
    entry: Region,
    allowed: Sequence[Region],
    routing: RoutingSettings,
    failover: FailoverSettings,
) -> tuple[str, ...]:
    """Regions in Envoy priority order: the preferred one, then where failover may go."""
    order = preference_order(entry, allowed, routing)
    if not order:
        return ()
    first, rest = order[0], order[1:]
    if not failover.enabled:
        return (first,)
    if failover.regions:
        rest = tuple(
            name for name in dict.fromkeys(failover.regions) if name in rest and name != first
        )
    return (first, *rest)


def offload_targets(tiers: Sequence[str], entry: str, offload: OffloadSettings) -> tuple[str, ...]:
    """Where a saturated entry region sends overflow: never itself, never outside the tiers."""
    candidates = [name for name in tiers if name != entry]
    if offload.regions:
        return tuple(name for name in dict.fromkeys(offload.regions) if name in candidates)
    return tuple(candidates)
