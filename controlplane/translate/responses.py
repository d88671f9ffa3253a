"""Answers the gateway gives itself: health, and clear errors for unknown deployments.

REST errors are 404 with a JSON body `{"error": ...}`. gRPC errors are trailers-only
responses with grpc-status 5 (NOT_FOUND): Envoy turns a direct response to a gRPC request into
trailers-only and puts the body into grpc-message, and the route overrides the grpc-status it
would otherwise derive from the HTTP code.
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2, substitution_format_string_pb2
from envoy.config.route.v3 import route_components_pb2
from google.protobuf import struct_pb2

GRPC_NOT_FOUND = 5
GRPC_FAILED_PRECONDITION = 9
GRPC_UNAVAILABLE = 14
HTTP_FORBIDDEN = 403
HTTP_NOT_FOUND = 404
HTTP_UNAVAILABLE = 503


def json_not_found(route: route_components_pb2.Route, error: str) -> None:
    """Make `route` answer 404 with `{"error": error}`; `error` may hold %REQ(...)% operators."""
    json_error(route, HTTP_NOT_FOUND, error)


def json_error(route: route_components_pb2.Route, status: int, error: str) -> None:
    """Make `route` answer `status` with `{"error": error}`."""
    fields = struct_pb2.Struct()
    fields.update({"error": error})
    body_format = substitution_format_string_pb2.SubstitutionFormatString(
        json_format=fields, content_type="application/json"
    )
    route.direct_response.CopyFrom(
        route_components_pb2.DirectResponseAction(status=status, body_format=body_format)
    )


def grpc_not_found(route: route_components_pb2.Route, message: str) -> None:
    """Make `route` answer a gRPC request with NOT_FOUND and `message` as grpc-message."""
    grpc_error(route, GRPC_NOT_FOUND, HTTP_NOT_FOUND, message)


def grpc_error(
    route: route_components_pb2.Route, grpc_status: int, http_status: int, message: str
) -> None:
    """Make `route` answer a gRPC request with `grpc_status` and `message` as grpc-message."""
    body_format = substitution_format_string_pb2.SubstitutionFormatString()
    body_format.text_format_source.inline_string = message
    route.direct_response.CopyFrom(
        route_components_pb2.DirectResponseAction(status=http_status, body_format=body_format)
    )
    route.response_headers_to_add.append(_header("grpc-status", str(grpc_status)))


def json_ok(route: route_components_pb2.Route, body: str) -> None:
    """Make `route` answer 200 with a fixed JSON body (the gateway's own health)."""
    route.direct_response.status = 200
    route.direct_response.body.inline_string = body
    route.response_headers_to_add.append(_header("content-type", "application/json"))


def _header(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=key, value=value),
        append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
    )


def request_header(key: str, value: str) -> base_pb2.HeaderValueOption:
    """A request header set (overwritten) on the way upstream."""
    return _header(key, value)


def response_header(key: str, value: str) -> base_pb2.HeaderValueOption:
    """A response header set (overwritten) on the way back to the client."""
    return _header(key, value)
