"""Where a deployment runs: its policies and its environment's, combined by the collision rule.

For each policy type: a mandatory environment policy always applies; the deployment's own
policy applies too (so set-valued rules intersect with the mandatory ones); an optional
environment policy applies only when the deployment has none of that type. A region is chosen
when every applying policy allows it. No chosen region is an error, never a deployment nowhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from controlplane.policy.rules import (
    ORIGIN_DEPLOYMENT,
    ORIGIN_ENVIRONMENT,
    PlacementError,
    SourcedPolicy,
    sourced,
)
from meshline.v1.resources_pb2 import Deployment, Environment, Region


@dataclass(frozen=True)
class Exclusion:
    """A region left out, and the first applying policy that left it out."""

    region: str
    policy: SourcedPolicy

    def describe(self) -> str:
        return f"{self.region}: excluded by {self.policy.describe()}"


@dataclass(frozen=True)
class Placement:
    """The outcome of policy resolution for one deployment (what `explain` shows)."""

    regions: tuple[str, ...]  # chosen, sorted
    excluded: tuple[Exclusion, ...]  # sorted by region
    applied: tuple[SourcedPolicy, ...]  # policies that took part
    overridden: tuple[SourcedPolicy, ...]  # optional environment policies the deployment replaced

    def excluded_by(self, region: str) -> SourcedPolicy | None:
        return next((e.policy for e in self.excluded if e.region == region), None)


def effective_policies(
    deployment: Deployment, environment: Environment
) -> tuple[tuple[SourcedPolicy, ...], tuple[SourcedPolicy, ...]]:
    """(applied, overridden) policies of a deployment under the collision rule."""
    env_name = environment.metadata.name
    dep_name = deployment.metadata.name
    env_policies = [sourced(p, ORIGIN_ENVIRONMENT, env_name) for p in environment.spec.policies]
    dep_policies = [sourced(p, ORIGIN_DEPLOYMENT, dep_name) for p in deployment.spec.policies]
    dep_types = {p.rule_type for p in dep_policies}
    applied: list[SourcedPolicy] = []
    overridden: list[SourcedPolicy] = []
    for policy in env_policies:
        if policy.mandatory or policy.rule_type not in dep_types:
            applied.append(policy)
        else:
            overridden.append(policy)
    applied.extend(dep_policies)
    return tuple(applied), tuple(overridden)


def resolve_placement(
    deployment: Deployment, environment: Environment, regions: Sequence[Region]
) -> Placement:
    """Regions `deployment` runs in, given its environment and the registered regions."""
    applied, overridden = effective_policies(deployment, environment)
    known = {r.metadata.name for r in regions}
    for policy in applied:
        for name in policy.rule.regions:
            if name not in known:
                listed = ", ".join(sorted(known)) or "none"
                raise PlacementError(
                    f"{policy.describe()} names unknown region '{name}' (registered: {listed})"
                )
    chosen: list[str] = []
    excluded: list[Exclusion] = []
    for region in sorted(regions, key=lambda r: r.metadata.name):
        blocker = next((p for p in applied if not p.rule.allows(region)), None)
        if blocker is None:
            chosen.append(region.metadata.name)
        else:
            excluded.append(Exclusion(region.metadata.name, blocker))
    if not chosen:
        raise PlacementError(_nowhere(deployment, applied, regions))
    return Placement(tuple(chosen), tuple(excluded), applied, overridden)


def _nowhere(
    deployment: Deployment, applied: Sequence[SourcedPolicy], regions: Sequence[Region]
) -> str:
    """Why nothing was chosen, naming the policies responsible."""
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
    for policy in applied:
        if not any(policy.rule.allows(r) for r in regions):
            return f"no registered region satisfies {policy.describe()} (registered: {registered})"
    # Each allows something on its own: name the smallest set of policies that collide.
    for size in range(2, len(applied) + 1):
        for group in combinations(applied, size):
            if not any(all(p.rule.allows(r) for p in group) for r in regions):
                named = " and ".join(p.describe() for p in group)
                return f"{named} allow no common region (registered: {registered})"
    raise AssertionError("unreachable: some region passes every policy")
