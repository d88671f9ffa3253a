"""Resolve every deployment of the network at once, sharing out region capacity.

Capacity goes to deployments in creation order, so an older deployment never loses its
regions to a newer one; a deployment that fits nowhere gets an error naming why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from controlplane.policy.memo import ResolveMemo
from controlplane.policy.resolve import ResolvedDeployment, resolve_deployment
from controlplane.policy.rules import PlacementError
from meshline.keys import DeploymentKey
from meshline.v1.resources_pb2 import Deployment, Environment, Region


@dataclass
class ResolvedNetwork:
    deployments: dict[DeploymentKey, ResolvedDeployment] = field(default_factory=dict)
    errors: dict[DeploymentKey, str] = field(default_factory=dict)


def _creation_order(deployment: Deployment) -> tuple[str, str, str]:
    # Not yet created (in the request being applied) sorts after everything stored.
    created = deployment.metadata.created_at or "~"
    return (created, deployment.spec.environment, deployment.metadata.name)


def resolve_network(
    deployments: Sequence[Deployment],
    environments: Mapping[str, Environment],
    regions: Sequence[Region],
    memo: ResolveMemo | None = None,
) -> ResolvedNetwork:
    """`memo`: resolutions remembered from earlier passes (the same result, faster)."""
    resolve = memo.resolver(environments, regions) if memo is not None else resolve_deployment
    result = ResolvedNetwork()
    free = {r.metadata.name: r.spec.max_replicas for r in regions if r.spec.max_replicas > 0}
    for dep in sorted(deployments, key=_creation_order):
        key = DeploymentKey(dep.spec.environment, dep.metadata.name)
        environment = environments.get(dep.spec.environment)
        if environment is None:
            result.errors[key] = f"environment '{dep.spec.environment}' does not exist"
            continue
        try:
            resolved = resolve(dep, environment, regions, free)
        except PlacementError as exc:
            result.errors[key] = str(exc)
            continue
        used = resolved.replicas * len(resolved.tracks)
        for name in resolved.placement.regions:
            if name in free:
                free[name] -= used
        result.deployments[key] = resolved
    return result
