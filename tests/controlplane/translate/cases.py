"""IR inputs shared by the golden, validation and determinism tests."""

from __future__ import annotations

from controlplane.ir import (
    DeploymentRoute,
    Endpoint,
    GatewayIR,
    HealthCheckSettings,
    OutlierSettings,
    RetrySettings,
)

EMPTY = GatewayIR(region="eu", listen_host="0.0.0.0", listen_port=10000)

ONE_DEPLOYMENT_DRAINING = GatewayIR(
    region="eu",
    listen_host="0.0.0.0",
    listen_port=10000,
    routes=(
        DeploymentRoute(
            deployment="fraud",
            environment="production",
            # Given out of order on purpose: the output is sorted by worker id.
            endpoints=(
                Endpoint("fraud-w2", "10.0.0.2", 9000, 8000, draining=True),
                Endpoint("fraud-w1", "10.0.0.1", 9000, 8000),
            ),
        ),
    ),
)

TWO_ENVIRONMENTS = GatewayIR(
    region="us",
    listen_host="127.0.0.1",
    listen_port=10443,
    routes=(
        DeploymentRoute(
            deployment="churn",
            environment="development",
            endpoints=(Endpoint("churn-w1", "10.0.1.1", 9100, 8100, healthy=False),),
        ),
        DeploymentRoute(
            deployment="fraud",
            environment="production",
            endpoints=(Endpoint("fraud-w1", "10.0.0.1", 9000, 8000),),
        ),
    ),
)

CUSTOM_RETRY_AND_TIMEOUTS = GatewayIR(
    region="eu",
    listen_host="0.0.0.0",
    listen_port=10000,
    routes=(
        DeploymentRoute(
            deployment="llm",
            environment="staging",
            endpoints=(Endpoint("llm-w1", "10.0.2.1", 9200, 8200),),
            request_timeout_s=120.0,
            retry=RetrySettings(
                num_retries=1,
                per_try_timeout_s=2.5,
                retry_on=("connect-failure", "refused-stream", "retriable-status-codes"),
                retriable_status_codes=(503, 502),
                backoff_base_s=0.1,
                backoff_max_s=1.0,
            ),
            health_check=HealthCheckSettings(
                interval_s=0.5, timeout_s=0.25, unhealthy_threshold=3, healthy_threshold=2
            ),
            outlier=OutlierSettings(
                consecutive_5xx=10,
                consecutive_gateway_failure=2,
                interval_s=2.0,
                base_ejection_time_s=30.0,
                max_ejection_percent=100,
            ),
        ),
    ),
)

CASES: dict[str, GatewayIR] = {
    "empty": EMPTY,
    "one_deployment_draining": ONE_DEPLOYMENT_DRAINING,
    "two_environments": TWO_ENVIRONMENTS,
    "custom_retry_and_timeouts": CUSTOM_RETRY_AND_TIMEOUTS,
}
