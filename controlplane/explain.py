"""Explain a deployment: merged policies, chosen and excluded regions, and what each gateway
does with it (versions, clusters, priorities, weights, retries). Used by `meshline plan`,
`apply --dry-run` (from policy alone) and `get deployment -o yaml` (from the live IR)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from controlplane.ir.build import GatewayAddress, build_network
from controlplane.ir.model import DeploymentRoute
from controlplane.policy import ResolvedDeployment
from controlplane.policy.access import DEFAULT_SOURCE
from meshline.v1.resources_pb2 import (
    DeploymentPlan,
    EffectivePolicy,
    GatewayPlan,
    Policy,
    Region,
    RegionExclusion,
    RouteTier,
)

# Stands in for gateways (and their peer listeners) whose address is not known when planning
# from policy alone.
_UNKNOWN_GATEWAY = GatewayAddress("0.0.0.0", 0, GatewayAddress("0.0.0.0", 0))


def policy_plan(resolved: ResolvedDeployment) -> DeploymentPlan:
    """The policy part: effective policies, placement, exclusions, flavors."""
    plan = DeploymentPlan(regions=list(resolved.placement.regions))
    for policy in resolved.applied:
        plan.policies.append(EffectivePolicy(source=policy.source, policy=policy.policy))
    for overridden in resolved.overridden:
        plan.policies.append(
            EffectivePolicy(
                source=overridden.policy.source,
                policy=overridden.policy.policy,
                overridden_by=f"{overridden.by.source} {overridden.by.rule_type} policy",
            )
        )
    if not any(p.rule_type == "access" for p in resolved.applied):
        # Secure by default: who may call is never left unsaid.
        default = Policy()
        default.access.SetInParent()
        plan.policies.append(EffectivePolicy(source=DEFAULT_SOURCE, policy=default))
    for exclusion in resolved.placement.excluded:
        plan.excluded.append(RegionExclusion(region=exclusion.region, reason=exclusion.reason))
    plan.flavor = ", ".join(f"{r}={f}" for r, f in resolved.placement.flavors)
    return plan


def gateway_plan(region: str, route: DeploymentRoute) -> GatewayPlan:
    """What one gateway was (or will be) told about the deployment."""
    retry = route.retry
    plan = GatewayPlan(
        region=region,
        strategy=route.strategy,
        hash_header=route.hash_header,
        timeout_s=route.request_timeout_s,
        retries=retry.num_retries,
        per_try_timeout_s=retry.per_try_timeout_s,
        retry_on=list(retry.retry_on),
        retry_budget_percent=retry.budget_percent,
        offload_percent=route.offload_percent,
    )
    for backend in route.backends:
        version = plan.versions.add(
            version=backend.version,
            weight=backend.weight,
            mirror_percent=backend.mirror_percent,
            cluster=", ".join(backend.clusters.pair),
        )
        for tier in backend.tiers:
            version.tiers.append(
                RouteTier(
                    priority=tier.priority,
                    region=tier.region,
                    kind=tier.kind,
                    weight=tier.share,
                    endpoints=len(tier.endpoints),
                )
            )
    return plan


def live_plan(
    resolved: ResolvedDeployment, routes: Mapping[str, DeploymentRoute]
) -> DeploymentPlan:
    """From the IR the gateways were last given (endpoint counts, offload weights included)."""
    plan = policy_plan(resolved)
    for region in sorted(routes):
        plan.gateways.append(gateway_plan(region, routes[region]))
    return plan


def planned(resolved: ResolvedDeployment, regions: Sequence[Region]) -> DeploymentPlan:
    """Before apply: every registered region's gateway, with no live endpoints."""
    network = build_network(
        [resolved],
        {r.metadata.name: r for r in regions},
        {r.metadata.name: _UNKNOWN_GATEWAY for r in regions},
        {},
    )
    routes = {
        g.region: route
        for g in network.gateways
        for route in g.routes
        if route.deployment == resolved.name
    }
    return live_plan(resolved, routes)


__all__ = ["gateway_plan", "live_plan", "planned", "policy_plan"]
