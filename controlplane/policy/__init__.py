"""Policy resolution: pure functions from resources to where deployments run."""

from controlplane.policy.placement import (
    Exclusion,
    Placement,
    effective_policies,
    resolve_placement,
)
from controlplane.policy.rules import (
    MODE_MANDATORY,
    MODE_OPTIONAL,
    ORIGIN_DEPLOYMENT,
    ORIGIN_ENVIRONMENT,
    POLICY_MODES,
    LocationRule,
    PlacementError,
    SourcedPolicy,
    sourced,
)

__all__ = [
    "MODE_MANDATORY",
    "MODE_OPTIONAL",
    "ORIGIN_DEPLOYMENT",
    "ORIGIN_ENVIRONMENT",
    "POLICY_MODES",
    "Exclusion",
    "LocationRule",
    "Placement",
    "PlacementError",
    "SourcedPolicy",
    "effective_policies",
    "resolve_placement",
    "sourced",
]
