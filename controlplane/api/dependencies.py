"""What keeps a region from being deleted: deployments placed in it, policies naming it."""

from __future__ import annotations

from controlplane.policy import PlacementError, resolve_placement
from controlplane.store import StoreSnapshot


def region_dependents(region: str, stored: StoreSnapshot) -> list[str]:
    """Why `region` cannot go, one line per reason; empty when it can."""
    reasons: list[str] = []
    envs = {env.metadata.name: env for env in stored.environments}
    for env in stored.environments:
        if any(region in p.location.regions for p in env.spec.policies):
            reasons.append(f"environment '{env.metadata.name}' (a location policy names it)")
    for dep in stored.deployments:
        subject = f"deployment '{dep.metadata.name}' in environment '{dep.spec.environment}'"
        if any(region in p.location.regions for p in dep.spec.policies):
            reasons.append(f"{subject} (a location policy names it)")
            continue
        dep_env = envs.get(dep.spec.environment)
        if dep_env is None:
            continue
        try:
            placement = resolve_placement(dep, dep_env, stored.regions)
        except PlacementError:
            continue
        if region in placement.regions:
            reasons.append(f"{subject} (placed there)")
    return reasons
