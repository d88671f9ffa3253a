"""Where a deployment runs: its policies and its environment's, combined by the collision rule.

For each policy type a mandatory environment policy always applies. Set-valued types (location,
flavor) also apply the deployment's own, so they intersect; for the other types the mandatory
environment policy wins over the deployment's. An optional environment policy applies only when
the deployment has none of that type. A region is chosen when every applying location and
flavor policy allows it and it has room for the replicas. No chosen region is an error naming
the colliding policies, never a deployment nowhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from controlplane.policy.rules import (
    ORIGIN_DEPLOYMENT,
    ORIGIN_ENVIRONMENT,
    RESTRICTIVE_TYPES,
    SET_VALUED_TYPES,
    PlacementError,
    SourcedPolicy,
    sourced,
)
from meshline.v1.resources_pb2 import Deployment, Environment, Region


@dataclass(frozen=True)
class Exclusion:
    """A region left out, and why: the first policy that left it out, or its capacity."""

    region: str
    reason: str
    policy: SourcedPolicy | None = None  # None: excluded for capacity

    def describe(self) -> str:
        return f"{self.region}: excluded by {self.reason}"


@dataclass(frozen=True)
class Overridden:
    """A policy that does not apply, and the policy that took its place."""

    policy: SourcedPolicy
    by: SourcedPolicy

    def describe(self) -> str:
        return f"{self.policy.describe()} (overridden by {self.by.source})"


@dataclass(frozen=True)
class Placement:
    """The outcome of policy resolution for one deployment (what `plan` shows)."""

    regions: tuple[str, ...]  # chosen, sorted
    excluded: tuple[Exclusion, ...]  # sorted by region
    applied: tuple[SourcedPolicy, ...]  # policies that took part
    overridden: tuple[Overridden, ...]
    flavors: tuple[tuple[str, str], ...] = ()  # (region, "cpu:NAME" | "gpu:NAME") when set

    def excluded_by(self, region: str) -> SourcedPolicy | None:
        return next((e.policy for e in self.excluded if e.region == region), None)

    def flavor(self, region: str) -> str:
        return dict(self.flavors).get(region, "")

    def of_type(self, rule_type: str) -> tuple[SourcedPolicy, ...]:
        return tuple(p for p in self.applied if p.rule_type == rule_type)


def effective_policies(
    deployment: Deployment, environment: Environment
) -> tuple[tuple[SourcedPolicy, ...], tuple[Overridden, ...]]:
    """(applied, overridden) policies of a deployment under the collision rule."""
    env_name = environment.metadata.name
    dep_name = deployment.metadata.name
    env_policies = [sourced(p, ORIGIN_ENVIRONMENT, env_name) for p in environment.spec.policies]
    dep_policies = [sourced(p, ORIGIN_DEPLOYMENT, dep_name) for p in deployment.spec.policies]
    dep_by_type = {p.rule_type: p for p in dep_policies}
    env_mandatory = {p.rule_type: p for p in env_policies if p.mandatory}
    applied: list[SourcedPolicy] = []
    overridden: list[Overridden] = []
    for policy in env_policies:
        own = dep_by_type.get(policy.rule_type)
        if policy.mandatory or own is None:
            applied.append(policy)
        else:
            overridden.append(Overridden(policy, own))
    for policy in dep_policies:
        winner = env_mandatory.get(policy.rule_type)
        if winner is None or policy.rule_type in RESTRICTIVE_TYPES:
            applied.append(policy)
        else:
            overridden.append(Overridden(policy, winner))
    return tuple(applied), tuple(overridden)


def resolve_placement(
    deployment: Deployment,
    environment: Environment,
    regions: Sequence[Region],
    free_replicas: Mapping[str, int] | None = None,
    needed_replicas: int = 0,
) -> Placement:
    """Regions `deployment` runs in, given its environment and the registered regions.

    `free_replicas` (region → replicas still free, absent = unlimited) and `needed_replicas`
    (what the deployment runs in each region) add the capacity test.
    """
    applied, overridden = effective_policies(deployment, environment)
    _check_known_regions(applied, regions)
    _check_flavor_kinds(applied)
    placing = [p for p in applied if p.rule_type in SET_VALUED_TYPES]
    free = free_replicas or {}
    chosen: list[str] = []
    excluded: list[Exclusion] = []
    for region in sorted(regions, key=lambda r: r.metadata.name):
        name = region.metadata.name
        blocker = next((p for p in placing if not p.allows(region)), None)
        if blocker is not None:
            excluded.append(Exclusion(name, blocker.describe(), blocker))
        elif not _flavors_meet(placing, region):
            excluded.append(_flavor_exclusion(placing, name))
        elif name in free and free[name] < needed_replicas:
            excluded.append(Exclusion(name, _capacity_reason(region, free[name], needed_replicas)))
        else:
            chosen.append(name)
    if not chosen:
        raise PlacementError(_nowhere(deployment, placing, regions, excluded))
    flavors = tuple(
        (name, flavor)
        for name in chosen
        if (flavor := _chosen_flavor(placing, _by_name(regions, name)))
    )
    return Placement(tuple(chosen), tuple(excluded), applied, overridden, flavors)


def _by_name(regions: Sequence[Region], name: str) -> Region:
    return next(r for r in regions if r.metadata.name == name)


def _capacity_reason(region: Region, free: int, needed: int) -> str:
    return (
        f"region '{region.metadata.name}' capacity (max_replicas {region.spec.max_replicas}, "
        f"{free} free, this deployment needs {needed})"
    )


def _check_known_regions(applied: Sequence[SourcedPolicy], regions: Sequence[Region]) -> None:
    known = {r.metadata.name for r in regions}
    for policy in applied:
        for name in _named_regions(policy):
            if name not in known:
                listed = ", ".join(sorted(known)) or "none"
                raise PlacementError(
                    f"{policy.describe()} names unknown region '{name}' (registered: {listed})"
                )


def _named_regions(policy: SourcedPolicy) -> list[str]:
    p = policy.policy
    kind = policy.rule_type
    if kind == "location":
        return [*p.location.regions, *p.location.deny.regions]
    if kind == "routing":
        return list(p.routing.region_order)
    if kind == "failover":
        return list(p.failover.regions)
    if kind == "offload":
        return list(p.offload.regions)
    return []


def _check_flavor_kinds(applied: Sequence[SourcedPolicy]) -> None:
    """A deployment runs on CPU flavors or GPU flavors, never a mix of both."""
    flavors = [p for p in applied if p.rule_type == "flavor"]
    for policy in flavors:
        if policy.policy.flavor.cpu and policy.policy.flavor.gpu:
            raise PlacementError(
                f"{policy.describe()} lists CPU and GPU flavors: a deployment uses one or the other"
            )
    cpu = next((p for p in flavors if p.policy.flavor.cpu), None)
    gpu = next((p for p in flavors if p.policy.flavor.gpu), None)
    if cpu is not None and gpu is not None:
        raise PlacementError(
            f"{cpu.describe()} and {gpu.describe()} collide: "
            "a deployment uses CPU flavors or GPU flavors, never both"
        )


def _chosen_flavor(placing: Sequence[SourcedPolicy], region: Region) -> str:
    """The first flavor (by name) that every flavor policy allows and the region offers."""
    flavor_policies = [p.policy.flavor for p in _flavor_policies(placing)]
    if not flavor_policies:
        return ""
    kind = "gpu" if any(f.gpu for f in flavor_policies) else "cpu"
    offered = set(getattr(region.spec.flavors, kind))
    for rule in flavor_policies:
        offered &= set(getattr(rule, kind))
    return f"{kind}:{sorted(offered)[0]}" if offered else ""


def _flavors_meet(placing: Sequence[SourcedPolicy], region: Region) -> bool:
    """Whether `region` offers one flavor that every flavor policy allows (sets intersect).

    Each policy allowing some flavor the region offers is not enough: with env {cpu: [a, b]}
    and deployment {cpu: [b, c]}, a region offering only a and c has no flavor both allow.
    """
    return not _flavor_policies(placing) or bool(_chosen_flavor(placing, region))


def _flavor_policies(placing: Sequence[SourcedPolicy]) -> list[SourcedPolicy]:
    """The flavor policies that name flavors (an empty set restricts nothing)."""
    return [
        p
        for p in placing
        if p.rule_type == "flavor" and (p.policy.flavor.cpu or p.policy.flavor.gpu)
    ]


def _flavor_exclusion(placing: Sequence[SourcedPolicy], region: str) -> Exclusion:
    flavor_policies = _flavor_policies(placing)
    named = " and ".join(p.describe() for p in flavor_policies)
    reason = f"{named} together (the region offers no flavor that all of them allow)"
    return Exclusion(region, reason, flavor_policies[-1])


def _nowhere(
    deployment: Deployment,
    placing: Sequence[SourcedPolicy],
    regions: Sequence[Region],
    excluded: Sequence[Exclusion],
) -> str:
    """Why nothing was chosen, naming the policies (and capacities) responsible."""
    name = deployment.metadata.name
    if not regions:
        return (
            f"deployment '{name}' cannot be placed: no region is registered "
            "(apply a Region or start a region's agent)"
        )
    registered = ", ".join(
        f"{r.metadata.name} ({r.spec.country or 'no country'})"
        for r in sorted(regions, key=lambda r: r.metadata.name)
    )
    for policy in placing:
        if not any(policy.allows(r) for r in regions):
            return f"no registered region satisfies {policy.describe()} (registered: {registered})"
    # Each allows something on its own: name the smallest set of policies that collide.
    for size in range(2, len(placing) + 1):
        for group in combinations(placing, size):
            if not any(
                all(p.allows(r) for p in group) and _flavors_meet(group, r) for r in regions
            ):
                named = " and ".join(p.describe() for p in group)
                return f"{named} allow no common region (registered: {registered})"
    full = [e for e in excluded if e.policy is None]
    allowed_by = " and ".join(p.describe() for p in placing) or "no location or flavor policy"
    return f"{allowed_by} allow only regions without room: " + "; ".join(e.reason for e in full)
