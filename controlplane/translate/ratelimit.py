"""local_ratelimit: the `rate` policy's token buckets on each entry gateway.

Envoy gives every route its own bucket when a limit sits in a route's config, but a deployment
is reached through many routes (gRPC and REST, each form of the routing key, pinned versions):
its limit must be one bucket for all of them. So each route only *describes* a request
(`rate_limits` actions: the deployment, and the principal from the verified token), and the
listener's one filter holds a bucket per descriptor. That filter config comes by ECDS: a changed
limit reaches the next request on every open connection (and refills every bucket of the
gateway, once). Per-principal buckets are made on demand, at most MAX_PRINCIPAL_BUCKETS
(least recently used go first).

Requests a gateway forwards are counted where they entered, never again at the serving region.
"""

from __future__ import annotations

import math
from typing import TypeAlias

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2
from envoy.type.v3 import percent_pb2, token_bucket_pb2

from controlplane.ir.model import DeploymentRoute, GatewayIR
from controlplane.policy.access import TokenBucket
from controlplane.translate import wellknown
from controlplane.translate.access import PAYLOAD_KEY
from controlplane.translate.pb import boolean, duration, uint32
from meshline import jwk

DEPLOYMENT_DESCRIPTOR = "meshline_deployment"
PRINCIPAL_DESCRIPTOR = "meshline_principal"
ANONYMOUS_PRINCIPAL = "anonymous"
MAX_PRINCIPAL_BUCKETS = 10_000
# Requests without a descriptor (deployments with no rate policy) take from a bucket that never
# runs dry.
UNLIMITED_TOKENS = 2**32 - 1
MIN_FILL_INTERVAL_MS = 50  # Envoy refuses a shorter one
STAT_PREFIX = "meshline_rate"
RateLimit: TypeAlias = route_components_pb2.RateLimit


def fill_schedule(requests_per_second: float) -> tuple[int, int]:
    """(tokens per fill, fill interval in ms) closest to `requests_per_second`: one token per
    interval while that is at least 50 ms, else the interval (50..1000 ms) whose whole token
    count per fill is nearest the rate."""
    interval = 1000.0 / requests_per_second
    if interval >= MIN_FILL_INTERVAL_MS:
        return 1, round(interval)
    best = (math.inf, 1, 1000)
    for millis in range(MIN_FILL_INTERVAL_MS, 1001, 10):
        exact = requests_per_second * millis / 1000
        tokens = max(1, round(exact))
        error = abs(tokens - exact) / exact
        if error < best[0] - 1e-12:
            best = (error, tokens, millis)
        if error < 0.001:
            break
    return best[1], best[2]


def token_bucket(bucket: TokenBucket) -> token_bucket_pb2.TokenBucket:
    tokens, millis = fill_schedule(bucket.requests_per_second)
    return token_bucket_pb2.TokenBucket(
        max_tokens=max(bucket.burst, tokens),
        tokens_per_fill=uint32(tokens),
        fill_interval=duration(millis / 1000),
    )


def rate_limit_config(gateway: GatewayIR) -> local_rate_limit_pb2.LocalRateLimit:
    config = local_rate_limit_pb2.LocalRateLimit(
        stat_prefix=STAT_PREFIX,
        token_bucket=token_bucket_pb2.TokenBucket(
            max_tokens=UNLIMITED_TOKENS,
            tokens_per_fill=uint32(UNLIMITED_TOKENS),
            fill_interval=duration(1),
        ),
        always_consume_default_token_bucket=boolean(False),
        rate_limited_as_resource_exhausted=True,
        max_dynamic_descriptors=uint32(MAX_PRINCIPAL_BUCKETS),
    )
    # Both default to off: the filter only counts what these say it enforces.
    for field, key in ((config.filter_enabled, "enabled"), (config.filter_enforced, "enforced")):
        field.default_value.numerator = 100
        field.default_value.denominator = percent_pb2.FractionalPercent.HUNDRED
        field.runtime_key = f"{STAT_PREFIX}.{key}"
    longest_ms = 1000
    for route in sorted(gateway.routes, key=lambda r: r.name):
        rate = route.rate
        if route.deactivated:
            continue
        if rate.deployment is not None:
            descriptor = config.descriptors.add(token_bucket=token_bucket(rate.deployment))
            descriptor.entries.add(key=DEPLOYMENT_DESCRIPTOR, value=route.name)
            longest_ms = max(longest_ms, fill_schedule(rate.deployment.requests_per_second)[1])
        if rate.principal is not None:
            descriptor = config.descriptors.add(token_bucket=token_bucket(rate.principal))
            descriptor.entries.add(key=DEPLOYMENT_DESCRIPTOR, value=route.name)
            # No value: one bucket per principal seen (dynamic descriptors).
            descriptor.entries.add(key=PRINCIPAL_DESCRIPTOR)
            longest_ms = max(longest_ms, fill_schedule(rate.principal.requests_per_second)[1])
    config.response_headers_to_add.append(
        base_pb2.HeaderValueOption(
            header=base_pb2.HeaderValue(key="retry-after", value=str(math.ceil(longest_ms / 1000))),
            append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
        )
    )
    return config


def route_actions(route: DeploymentRoute) -> list[RateLimit]:
    """What a client route tells the filter about a request (nothing without a rate policy)."""
    deployment = RateLimit.Action(
        generic_key=RateLimit.Action.GenericKey(
            descriptor_key=DEPLOYMENT_DESCRIPTOR, descriptor_value=route.name
        )
    )
    limits = []
    if route.rate.deployment is not None:
        limits.append(RateLimit(actions=[deployment]))
    if route.rate.principal is not None:
        principal = RateLimit.Action(
            metadata=RateLimit.Action.MetaData(
                descriptor_key=PRINCIPAL_DESCRIPTOR,
                default_value=ANONYMOUS_PRINCIPAL,
                source=RateLimit.Action.MetaData.DYNAMIC,
            )
        )
        principal.metadata.metadata_key.key = wellknown.JWT_AUTHN_METADATA
        principal.metadata.metadata_key.path.add(key=PAYLOAD_KEY)
        principal.metadata.metadata_key.path.add(key=jwk.SUBJECT_CLAIM)
        limits.append(RateLimit(actions=[deployment, principal]))
    return limits
