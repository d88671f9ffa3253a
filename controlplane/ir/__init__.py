"""Typed intermediate model of the whole network: what every gateway must do.

Built by `controlplane.ir.build` from resolved policies and live endpoints; consumed by
`controlplane.translate`. Nothing here knows Envoy.
"""

from controlplane.ir.model import (
    TIER_ACTIVATOR,
    TIER_GATEWAY,
    TIER_LOCAL,
    Backend,
    DeploymentRoute,
    Endpoint,
    GatewayIR,
    NetworkIR,
    Tier,
)
from controlplane.policy.settings import HealthCheckSettings, OutlierSettings, RetrySettings

__all__ = [
    "TIER_ACTIVATOR",
    "TIER_GATEWAY",
    "TIER_LOCAL",
    "Backend",
    "DeploymentRoute",
    "Endpoint",
    "GatewayIR",
    "HealthCheckSettings",
    "NetworkIR",
    "OutlierSettings",
    "RetrySettings",
    "Tier",
]
