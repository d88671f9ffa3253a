"""The IR dataclasses. Frozen, so a gateway's IR can be compared and hashed."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_ENVIRONMENT = "production"


@dataclass(frozen=True)
class Endpoint:
    """One worker process as seen by a gateway."""

    worker_id: str
    host: str
    grpc_port: int
    http_port: int
    healthy: bool = True
    # Replaced or unwanted: Envoy stops sending new requests but lets in-flight ones finish.
    draining: bool = False


@dataclass(frozen=True)
class RetrySettings:
    """Retries on failures that never reached the model (safe to replay)."""

    num_retries: int = 3
    per_try_timeout_s: float = 0.0  # 0 = none; only the route timeout applies
    retry_on: tuple[str, ...] = (
        "reset",
        "connect-failure",
        "refused-stream",
        "unavailable",
        "retriable-status-codes",
    )
    retriable_status_codes: tuple[int, ...] = (503,)
    backoff_base_s: float = 0.025
    backoff_max_s: float = 0.25


@dataclass(frozen=True)
class HealthCheckSettings:
    """Active health checking of workers by the gateway."""

    interval_s: float = 1.0
    # Generous: a saturated worker answers health checks late, and ejecting it for that
    # would take capacity away exactly under load. Crashes are caught faster by resets.
    timeout_s: float = 2.0
    unhealthy_threshold: int = 3
    healthy_threshold: int = 1


@dataclass(frozen=True)
class OutlierSettings:
    """Passive ejection of workers that fail requests."""

    consecutive_5xx: int = 5
    consecutive_gateway_failure: int = 3
    interval_s: float = 1.0
    base_ejection_time_s: float = 5.0
    max_ejection_percent: int = 50


@dataclass(frozen=True)
class DeploymentRoute:
    """One deployment in one environment, served by one gateway."""

    deployment: str
    environment: str
    endpoints: tuple[Endpoint, ...] = ()
    request_timeout_s: float = 30.0
    retry: RetrySettings = field(default_factory=RetrySettings)
    health_check: HealthCheckSettings = field(default_factory=HealthCheckSettings)
    outlier: OutlierSettings = field(default_factory=OutlierSettings)

    @property
    def key(self) -> str:
        """Stable identity used in Envoy resource names: `{deployment}.{environment}`."""
        return f"{self.deployment}.{self.environment}"


@dataclass(frozen=True)
class GatewayIR:
    """Everything one region's Envoy serves."""

    region: str
    listen_host: str
    listen_port: int
    routes: tuple[DeploymentRoute, ...] = ()


@dataclass(frozen=True)
class NetworkIR:
    """All gateways of the network."""

    gateways: tuple[GatewayIR, ...] = ()

    def gateway(self, region: str) -> GatewayIR | None:
        return next((g for g in self.gateways if g.region == region), None)
