"""Policy resolution: pure functions from resources to where and how deployments run."""

from controlplane.policy.memo import ResolveMemo
from controlplane.policy.network import ResolvedNetwork, resolve_network
from controlplane.policy.placement import (
    Exclusion,
    Overridden,
    Placement,
    effective_policies,
    resolve_placement,
)
from controlplane.policy.proximity import offload_targets, preference_order, tier_order
from controlplane.policy.resolve import ResolvedDeployment, deployment_tracks, resolve_deployment
from controlplane.policy.rules import (
    DEPLOYMENT_ONLY_TYPES,
    MODE_MANDATORY,
    MODE_OPTIONAL,
    ORIGIN_DEPLOYMENT,
    ORIGIN_ENVIRONMENT,
    POLICY_MODES,
    POLICY_TYPES,
    PlacementError,
    SourcedPolicy,
    compact,
    sourced,
)

__all__ = [
    "DEPLOYMENT_ONLY_TYPES",
    "MODE_MANDATORY",
    "MODE_OPTIONAL",
    "ORIGIN_DEPLOYMENT",
    "ORIGIN_ENVIRONMENT",
    "POLICY_MODES",
    "POLICY_TYPES",
    "Exclusion",
    "Overridden",
    "Placement",
    "PlacementError",
    "ResolveMemo",
    "ResolvedDeployment",
    "ResolvedNetwork",
    "SourcedPolicy",
    "compact",
    "deployment_tracks",
    "effective_policies",
    "offload_targets",
    "preference_order",
    "resolve_deployment",
    "resolve_network",
    "resolve_placement",
    "sourced",
    "tier_order",
]
