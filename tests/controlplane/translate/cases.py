"""IR inputs shared by the golden, validation and determinism tests."""

from __future__ import annotations

from dataclasses import replace

from controlplane.ir import (
    TIER_ACTIVATOR,
    TIER_GATEWAY,
    TIER_LOCAL,
    Backend,
    DeploymentRoute,
    Endpoint,
    GatewayIR,
    HealthCheckSettings,
    OutlierSettings,
    RetrySettings,
    Tier,
)
from controlplane.ir.model import Credentials, EdgeTls, PeerPath, PublicKey
from controlplane.policy.access import (
    AccessSettings,
    CallerRule,
    ClaimRule,
    FirewallRule,
    JwtCaller,
    JwtIssuer,
    RateSettings,
    TokenBucket,
)
from meshline.edge_tls import EdgeTlsMode
from tests.controlplane.translate.fixed_tls import edge_tls_certificate, gateway_tls

EMPTY = GatewayIR(region="eu", listen_host="0.0.0.0", listen_port=10000)

ONE_DEPLOYMENT_DRAINING = GatewayIR(
    region="eu",
    listen_host="0.0.0.0",
    listen_port=10000,
    routes=(
        DeploymentRoute.local(
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
        DeploymentRoute.local(
            deployment="churn",
            environment="development",
            endpoints=(Endpoint("churn-w1", "10.0.1.1", 9100, 8100, healthy=False),),
        ),
        DeploymentRoute.local(
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
        DeploymentRoute.local(
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


def _gateway(region: str, port: int, healthy: bool = True) -> Endpoint:
    return Endpoint(f"gateway.{region}", "10.9.0.1", port, port, healthy=healthy)


_WEST_WORKERS = (
    Endpoint("fraud-w1", "10.0.0.1", 9000, 8000),
    Endpoint("fraud-w2", "10.0.0.2", 9000, 8000, healthy=False),
)

# eu-west runs it; eu-central (healthy) and us-east (no healthy worker) are failover targets.
FAILOVER_THREE_REGIONS = GatewayIR(
    region="eu-west",
    listen_host="0.0.0.0",
    listen_port=10000,
    routes=(
        DeploymentRoute(
            "fraud",
            "production",
            (
                Backend(
                    "",
                    "v1",
                    tiers=(
                        Tier("eu-west", TIER_LOCAL, 0, _WEST_WORKERS),
                        Tier("eu-central", TIER_GATEWAY, 1, (_gateway("eu-central", 10001),)),
                        Tier("us-east", TIER_GATEWAY, 2, (_gateway("us-east", 10002, False),)),
                    ),
                    local_endpoints=_WEST_WORKERS,
                ),
            ),
        ),
    ),
    peer=PeerPath("0.0.0.0", 11000, gateway_tls("eu-west"), peers=("eu-central", "us-east")),
)

# us-east is outside an EU-only placement: it forwards, and refuses forwarded requests.
ENTRY_OUTSIDE_PLACEMENT = GatewayIR(
    region="us-east",
    listen_host="0.0.0.0",
    listen_port=10002,
    routes=(
        DeploymentRoute(
            "gdpr",
            "production",
            (
                Backend(
                    "",
                    "v1",
                    tiers=(
                        Tier("eu-west", TIER_GATEWAY, 0, (_gateway("eu-west", 10000),)),
                        Tier("eu-central", TIER_GATEWAY, 1, (_gateway("eu-central", 10001),)),
                    ),
                    local_endpoints=None,
                ),
            ),
        ),
    ),
    peer=PeerPath("0.0.0.0", 11002, gateway_tls("us-east"), peers=("eu-central", "eu-west")),
)

_MAIN = (Endpoint("rec-v1", "10.0.0.1", 9000, 8000),)
_CANARY = (Endpoint("rec-v2", "10.0.0.2", 9000, 8000),)
_SHADOW = (Endpoint("rec-v3", "10.0.0.3", 9000, 8000),)

# 90/10 split between v1 and v2, 25 % mirrored to v3; every version pinnable by header.
SPLIT_PIN_MIRROR = GatewayIR(
    region="eu-west",
    listen_host="0.0.0.0",
    listen_port=10000,
    routes=(
        DeploymentRoute(
            "rec",
            "production",
            (
                Backend("", "v1", 90, 0.0, (Tier("eu-west", TIER_LOCAL, 0, _MAIN),), _MAIN),
                Backend("v2", "v2", 10, 0.0, (Tier("eu-west", TIER_LOCAL, 0, _CANARY),), _CANARY),
                Backend("v3", "v3", 0, 25.0, (Tier("eu-west", TIER_LOCAL, 0, _SHADOW),), _SHADOW),
            ),
        ),
    ),
)

# Sticky sessions on a header, a retry budget, and failover tuning of checks and ejection.
RING_HASH_WITH_RETRY_BUDGET = GatewayIR(
    region="eu-west",
    listen_host="0.0.0.0",
    listen_port=10000,
    routes=(
        DeploymentRoute.local(
            deployment="chat",
            environment="production",
            endpoints=_WEST_WORKERS,
            region="eu-west",
            strategy="ring_hash",
            hash_header="x-user-id",
            retry=RetrySettings(num_retries=2, budget_percent=20.0, min_retry_concurrency=3),
            health_check=HealthCheckSettings(interval_s=0.5, unhealthy_threshold=2),
            outlier=OutlierSettings(consecutive_gateway_failure=2, max_ejection_percent=100),
        ),
        DeploymentRoute.local(
            deployment="search",
            environment="production",
            endpoints=_WEST_WORKERS,
            region="eu-west",
            strategy="least_request",
        ),
    ),
)

# Saturated eu-west sends 30 % to us-east, which shares priority 0 by host weights.
OFFLOAD_SHARES = GatewayIR(
    region="eu-west",
    listen_host="0.0.0.0",
    listen_port=10000,
    routes=(
        DeploymentRoute(
            "fraud",
            "production",
            (
                Backend(
                    "",
                    "v1",
                    tiers=(
                        Tier("eu-west", TIER_LOCAL, 0, _WEST_WORKERS, share=70),
                        Tier("us-east", TIER_GATEWAY, 0, (_gateway("us-east", 10002),), share=30),
                        Tier("eu-central", TIER_GATEWAY, 1, (_gateway("eu-central", 10001),)),
                    ),
                    local_endpoints=_WEST_WORKERS,
                ),
            ),
            offload_percent=30,
        ),
    ),
)

_ACTIVATOR = Endpoint("activator", "10.8.0.1", 7001, 7002)

# eu-west scaled to zero (no workers) with eu-central warm: failover first, the activator last;
# forwarded requests wait in the activator too. "paused" is deactivated: refused, no clusters.
COLD_AND_DEACTIVATED = GatewayIR(
    region="eu-west",
    listen_host="0.0.0.0",
    listen_port=10000,
    routes=(
        DeploymentRoute(
            "fraud",
            "production",
            (
                Backend(
                    "",
                    "v1",
                    tiers=(
                        Tier("eu-west", TIER_LOCAL, 0, ()),
                        Tier("eu-central", TIER_GATEWAY, 1, (_gateway("eu-central", 10001),)),
                        Tier("eu-west", TIER_ACTIVATOR, 2, (_ACTIVATOR,)),
                    ),
                    local_endpoints=(),
                    wakes="eu-west",
                ),
            ),
            retry=RetrySettings(num_retries=0, retry_on=()),
        ),
        DeploymentRoute("paused", "production", deactivated=True),
    ),
    # The gateway's certificate: it calls the activator with it (mTLS).
    peer=PeerPath("0.0.0.0", 11000, gateway_tls("eu-west"), peers=("eu-central",)),
)

_IDP_JWKS = (
    '{"keys":[{"kty":"RSA","alg":"RS256","use":"sig","kid":"idp-1","n":"u1SU1LfVLPHCozMxH2Mo4lgOEe'
    "PzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0_IzW7yWR7QkrmBL7jTKEn5u-qKhbwKfBstIs-bMY2Zkp18gnTxKLxoS2tF"
    "czGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW_VDL5AaWTg0nLVkjRo9z-40RQzuVaE8AkAFmxZzow3x-VJYKdjykkJ0"
    "iT9wCS0DRTXu269V264Vf_3jvredZiKRkgwlL9xNAwxXFg0x_XFw005UWVRIkdgcKWTjpBP2dPwVZ4WWC-9aGVd-Gyn1o0"
    'CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbcmw","e":"AQAB"}]}'
)

# Edge IAM on one gateway: "fraud" takes any key in scope from inside 10/8 (one trusted proxy in
# front), rate-limited per deployment and per principal; "scoring" layers a mandatory
# environment rule (role) over its own (named keys or an IdP's group claim), with one issuer's
# keys inline and one's fetched over HTTPS; "public" lets anyone in. Peers may forward to it.
EDGE_ACCESS = GatewayIR(
    region="eu-west",
    listen_host="0.0.0.0",
    listen_port=10000,
    routes=(
        DeploymentRoute.local(
            deployment="fraud",
            environment="production",
            endpoints=(Endpoint("fraud-w1", "10.0.0.1", 9000, 8000),),
            region="eu-west",
            access=AccessSettings(
                firewalls=(
                    FirewallRule(
                        "deployment fraud", ("10.0.0.0/8",), ("10.66.0.0/16",), trusted_hops=1
                    ),
                ),
            ),
            rate=RateSettings(
                deployment=TokenBucket(200.0, 50),
                principal=TokenBucket(0.5, 2),
                sources=("deployment fraud",),
            ),
        ),
        DeploymentRoute.local(
            deployment="scoring",
            environment="production",
            endpoints=(Endpoint("scoring-w1", "10.0.0.2", 9000, 8000),),
            region="eu-west",
            access=AccessSettings(
                callers=(
                    CallerRule("environment production (mandatory)", roles=("inference",)),
                    CallerRule(
                        "deployment scoring",
                        keys=("batch-job",),
                        jwt=(
                            JwtCaller(
                                "https://login.example.com",
                                ("scoring-api",),
                                (ClaimRule("realm_access.roles", ("scorer", "admin")),),
                            ),
                            JwtCaller("https://idp.example.org"),
                        ),
                    ),
                ),
                issuers=(
                    JwtIssuer("https://idp.example.org", jwks=_IDP_JWKS),
                    JwtIssuer(
                        "https://login.example.com",
                        jwks_uri="https://login.example.com/.well-known/jwks.json",
                    ),
                ),
            ),
        ),
        DeploymentRoute.local(
            deployment="public",
            environment="staging",
            endpoints=(Endpoint("public-w1", "10.0.0.3", 9000, 8000),),
            region="eu-west",
            access=AccessSettings.open(),
        ),
    ),
    credentials=Credentials(
        keys=(
            PublicKey(
                "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
            ),
            PublicKey(
                "a5b4c3d2e1f00f1e2d3c4b5a69788796", "GbKPkL_p6hHkq0sC9DLMY3xb2UTj4xmQmv0h7tNKb0o"
            ),
        )
    ),
)

# Edge TLS on the public listener, with the peer path's mTLS beside it: a certificate of the mesh
# CA over SDS (ADS), or the user's files through the agent's SDS file.
EDGE_TLS_MESH_CA = GatewayIR(
    region="eu",
    listen_host="10.0.0.10",
    listen_port=10443,
    routes=(
        DeploymentRoute.local(
            deployment="fraud",
            environment="production",
            endpoints=(Endpoint("fraud-w1", "10.0.0.1", 9000, 8000),),
            region="eu",
        ),
    ),
    peer=PeerPath("10.0.0.10", 10444, gateway_tls("eu"), ("us",)),
    edge=EdgeTls(
        EdgeTlsMode.MESH_CA, certificate=edge_tls_certificate("10.0.0.10", "gw.eu.example.com")
    ),
)

EDGE_TLS_FILES = replace(
    EDGE_TLS_MESH_CA,
    edge=EdgeTls(EdgeTlsMode.FILES, sds_path="/var/lib/meshline/regions/eu/edge/edge-sds.yaml"),
)

CASES: dict[str, GatewayIR] = {
    "edge_tls_mesh_ca": EDGE_TLS_MESH_CA,
    "edge_tls_files": EDGE_TLS_FILES,
    "edge_access": EDGE_ACCESS,
    "cold_and_deactivated": COLD_AND_DEACTIVATED,
    "failover_three_regions": FAILOVER_THREE_REGIONS,
    "entry_outside_placement": ENTRY_OUTSIDE_PLACEMENT,
    "split_pin_mirror": SPLIT_PIN_MIRROR,
    "ring_hash_with_retry_budget": RING_HASH_WITH_RETRY_BUDGET,
    "offload_shares": OFFLOAD_SHARES,
    "empty": EMPTY,
    "one_deployment_draining": ONE_DEPLOYMENT_DRAINING,
    "two_environments": TWO_ENVIRONMENTS,
    "custom_retry_and_timeouts": CUSTOM_RETRY_AND_TIMEOUTS,
}
