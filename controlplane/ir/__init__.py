"""Typed intermediate model of the whole network: what every gateway must do.

Built by `controlplane.ir.build` from stored resources, resolved policies and
live endpoints; consumed by `controlplane.translate`. Nothing here knows Envoy.
"""

from controlplane.ir.model import (
    DeploymentRoute,
    Endpoint,
    GatewayIR,
    HealthCheckSettings,
    NetworkIR,
    OutlierSettings,
    RetrySettings,
)

__all__ = [
    "DeploymentRoute",
    "Endpoint",
    "GatewayIR",
    "HealthCheckSettings",
    "NetworkIR",
    "OutlierSettings",
    "RetrySettings",
]
