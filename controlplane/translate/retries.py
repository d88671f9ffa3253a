"""Route retry policy from RetrySettings: replay only what never reached a model."""

from __future__ import annotations

from envoy.config.route.v3 import route_components_pb2
from envoy.config.route.v3.route_components_pb2 import HeaderMatcher
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.extensions.retry.priority.previous_priorities.v3 import (
    previous_priorities_config_pb2,
)
from envoy.type.matcher.v3 import string_pb2

from controlplane.ir.model import RetrySettings
from controlplane.translate.pb import duration, packed, uint32
from meshline.wire import ACTIVATOR_RETRY_HEADER, ACTIVATOR_RETRY_VALUE

PREVIOUS_HOSTS_PREDICATE = "envoy.retry_host_predicates.previous_hosts"
PREVIOUS_PRIORITIES = "envoy.retry_priorities.previous_priorities"
# Try a second host of the same priority before moving on to the next region.
PRIORITY_UPDATE_FREQUENCY = 2
# How often Envoy re-picks a host to avoid one it already tried.
HOST_SELECTION_ATTEMPTS = 3
ACTIVATOR_RETRY_ON = "retriable-headers"


def retry_policy(
    settings: RetrySettings, across_priorities: bool = False
) -> route_components_pb2.RetryPolicy:
    """With `across_priorities`, retries leave a priority (region) that already failed twice.

    Whatever the policy says, a request the activator held during a cold start is replayed
    once it answers "retry" (its own header, which no worker sends), so even a route without
    retries gets one attempt for that.
    """
    policy = route_components_pb2.RetryPolicy(
        retry_on=",".join([*settings.retry_on, ACTIVATOR_RETRY_ON]),
        num_retries=uint32(max(1, settings.num_retries)),
        host_selection_retry_max_attempts=HOST_SELECTION_ATTEMPTS,
        retriable_status_codes=sorted(set(settings.retriable_status_codes)),
    )
    policy.retriable_headers.append(
        HeaderMatcher(
            name=ACTIVATOR_RETRY_HEADER,
            string_match=string_pb2.StringMatcher(exact=ACTIVATOR_RETRY_VALUE),
        )
    )
    if settings.per_try_timeout_s > 0:
        policy.per_try_timeout.CopyFrom(duration(settings.per_try_timeout_s))
    # A retry goes to another worker when there is one.
    policy.retry_host_predicate.add(
        name=PREVIOUS_HOSTS_PREDICATE,
        typed_config=packed(previous_hosts_pb2.PreviousHostsPredicate()),
    )
    if across_priorities:
        policy.retry_priority.name = PREVIOUS_PRIORITIES
        policy.retry_priority.typed_config.CopyFrom(
            packed(
                previous_priorities_config_pb2.PreviousPrioritiesConfig(
                    update_frequency=PRIORITY_UPDATE_FREQUENCY
                )
            )
        )
    if settings.backoff_base_s > 0:  # Envoy wants base > 0 and max >= base
        policy.retry_back_off.base_interval.CopyFrom(duration(settings.backoff_base_s))
        policy.retry_back_off.max_interval.CopyFrom(
            duration(max(settings.backoff_max_s, settings.backoff_base_s))
        )
    return policy
