"""The answers to a refused caller: Envoy's own refusals, rewritten to name the deployment.

jwt_authn answers 401 ("Jwt is expired"), RBAC 403 ("RBAC: access denied") and local_ratelimit
429 ("local_rate_limited"); a client needs to know which deployment refused it and why. The
listener's local reply config rewrites exactly those: the deployment comes from the route's
metadata, the reason from Envoy's own text (401) or the matched policy's name (403). REST gets
meshline's JSON error body; gRPC gets the text as grpc-message, with the status Envoy derives
(401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 429 RESOURCE_EXHAUSTED). A route's own 403 answer
(a deactivated deployment) marks itself in dynamic metadata and is left as it is.
"""

from __future__ import annotations

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import base_pb2, substitution_format_string_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.type.matcher.v3 import metadata_pb2, string_pb2, value_pb2
from google.protobuf import struct_pb2

from controlplane.translate import wellknown

ROUTE_METADATA_DEPLOYMENT = "deployment"
ROUTE_METADATA_ENVIRONMENT = "environment"
_DEPLOYMENT = f"%METADATA(ROUTE:{wellknown.METADATA_NAMESPACE}:{ROUTE_METADATA_DEPLOYMENT})%"
_ENVIRONMENT = f"%METADATA(ROUTE:{wellknown.METADATA_NAMESPACE}:{ROUTE_METADATA_ENVIRONMENT})%"
_WHO = f"deployment '{_DEPLOYMENT}' in environment '{_ENVIRONMENT}'"

UNAUTHENTICATED = (
    f"{_WHO} needs a valid credential: %LOCAL_REPLY_BODY% "
    "(send 'authorization: Bearer <API key or JWT>')"
)
FORBIDDEN = f"{_WHO} refused the caller: %RESPONSE_CODE_DETAILS%"
RATE_LIMITED = f"{_WHO} is over its rate limit (retry after the retry-after header's seconds)"
_ANSWERS = ((401, UNAUTHENTICATED), (403, FORBIDDEN), (429, RATE_LIMITED))


def local_reply_config() -> hcm_pb2.LocalReplyConfig:
    config = hcm_pb2.LocalReplyConfig()
    for status, text in _ANSWERS:
        for grpc in (True, False):
            mapper = config.mappers.add()
            # The first mapper that matches wins: gRPC first, everything else after it.
            conditions = [_status_is(status)] + ([_grpc_request()] if grpc else [])
            if status == 403:
                conditions.append(_not_own_answer())
            if len(conditions) == 1:
                mapper.filter.CopyFrom(conditions[0])
            else:
                mapper.filter.and_filter.filters.extend(conditions)
            if grpc:
                mapper.body_format_override.text_format_source.inline_string = text
            else:
                body = struct_pb2.Struct()
                body.update({"error": text})
                mapper.body_format_override.CopyFrom(
                    substitution_format_string_pb2.SubstitutionFormatString(
                        json_format=body, content_type="application/json"
                    )
                )
    return config


def _status_is(status: int) -> accesslog_pb2.AccessLogFilter:
    comparison = accesslog_pb2.ComparisonFilter(
        op=accesslog_pb2.ComparisonFilter.EQ,
        value=base_pb2.RuntimeUInt32(default_value=status, runtime_key=f"meshline.reply.{status}"),
    )
    return accesslog_pb2.AccessLogFilter(
        status_code_filter=accesslog_pb2.StatusCodeFilter(comparison=comparison)
    )


def _grpc_request() -> accesslog_pb2.AccessLogFilter:
    header = route_components_pb2.HeaderMatcher(
        name="content-type", string_match=string_pb2.StringMatcher(prefix="application/grpc")
    )
    return accesslog_pb2.AccessLogFilter(header_filter=accesslog_pb2.HeaderFilter(header=header))


def _not_own_answer() -> accesslog_pb2.AccessLogFilter:
    """Matches unless the route marked its answer as its own. Envoy's metadata filter ignores
    `invert` and, when the key is present, only compares the value: so the mark is "true", the
    filter asks for "false", and an absent key matches (match_if_key_not_found)."""
    matcher = metadata_pb2.MetadataMatcher(
        filter=wellknown.METADATA_NAMESPACE,
        value=value_pb2.ValueMatcher(string_match=string_pb2.StringMatcher(exact="false")),
    )
    matcher.path.add(key=wellknown.METADATA_OWN_ANSWER_KEY)
    metadata = accesslog_pb2.MetadataFilter(matcher=matcher)
    metadata.match_if_key_not_found.value = True
    return accesslog_pb2.AccessLogFilter(metadata_filter=metadata)


def route_metadata(route: route_components_pb2.Route, deployment: str, environment: str) -> None:
    """Name the route's deployment where the rewritten answers read it."""
    fields = route.metadata.filter_metadata[wellknown.METADATA_NAMESPACE]
    fields.update({ROUTE_METADATA_DEPLOYMENT: deployment, ROUTE_METADATA_ENVIRONMENT: environment})
