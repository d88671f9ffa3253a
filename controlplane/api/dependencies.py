"""What keeps a region from being deleted: deployments placed in it, policies naming it."""

from __future__ import annotations

from collections.abc import Sequence

from controlplane.policy import PlacementError, resolve_placement
from controlplane.store import StoreSnapshot
from meshline.v1.resources_pb2 import Policy


def region_dependents(region: str, stored: StoreSnapshot) -> list[str]:
    """Why `region` cannot go, one line per dependent; empty when it can."""
    reasons: list[str] = []
    envs = {env.metadata.name: env for env in stored.environments}
    for env in stored.environments:
        if fields := _fields_naming(region, env.spec.policies):
            reasons.append(f"environment '{env.metadata.name}' ({_naming(fields)})")
    for dep in stored.deployments:
        subject = f"deployment '{dep.metadata.name}' in environment '{dep.spec.environment}'"
        if fields := _fields_naming(region, dep.spec.policies):
            reasons.append(f"{subject} ({_naming(fields)})")
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


def _fields_naming(region: str, policies: Sequence[Policy]) -> list[str]:
    """The fields (e.g. `spec.policies[1].failover.regions`) of `policies` that name `region`.

    Every list of region names a policy can hold counts: once the region is gone, resolving
    the policy fails with "names unknown region", so the deployments it governs are stranded.
    """
    fields = []
    for i, policy in enumerate(policies):
        rule = policy.WhichOneof("rule")
        named: dict[str, Sequence[str]] = {}
        if rule == "location":
            named = {
                "location.regions": policy.location.regions,
                "location.deny.regions": policy.location.deny.regions,
            }
        elif rule == "routing":
            named = {"routing.region_order": policy.routing.region_order}
        elif rule == "failover":
            named = {"failover.regions": policy.failover.regions}
        elif rule == "offload":
            named = {"offload.regions": policy.offload.regions}
        fields += [f"spec.policies[{i}].{f}" for f, names in named.items() if region in names]
    return fields


def _naming(fields: Sequence[str]) -> str:
    return f"its policy names it in {' and '.join(fields)}"
