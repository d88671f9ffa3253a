"""Deployment name parsed from a REST path, for the 404 that must name it; and the mark of a
route's own refusal.

Envoy's formatter cannot cut a path apart, so the header_to_metadata filter copies the
`{deployment}` segment of `/v2/models/{deployment}/...` into dynamic metadata, where the
404 body reads it with %DYNAMIC_METADATA(meshline:deployment)%. The filter is off in the
listener and switched on only by the routes that answer 404, so normal traffic never pays for it.
"""

from __future__ import annotations

from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.http.header_to_metadata.v3 import header_to_metadata_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import any_pb2

from controlplane.translate import wellknown
from controlplane.translate.pb import packed

DEPLOYMENT_FORMAT = (
    f"%DYNAMIC_METADATA({wellknown.METADATA_NAMESPACE}:{wellknown.METADATA_DEPLOYMENT_KEY})%"
)
_MODEL_SEGMENT = r"^/v2/models/([^/?#]*).*$"


def listener_filter() -> hcm_pb2.HttpFilter:
    """The filter as the listener carries it: present, configured, and disabled."""
    return hcm_pb2.HttpFilter(
        name=wellknown.HEADER_TO_METADATA_FILTER, typed_config=packed(_config()), disabled=True
    )


def enabled_on_route() -> dict[str, any_pb2.Any]:
    """typed_per_filter_config that switches the filter on for one route."""
    return {
        wellknown.HEADER_TO_METADATA_FILTER: packed(
            route_components_pb2.FilterConfig(config=packed(_config()))
        )
    }


def own_answer_on_route() -> dict[str, any_pb2.Any]:
    """typed_per_filter_config that marks a route's own refusal (controlplane/translate/
    denials.py leaves marked answers as they are)."""
    rule = header_to_metadata_pb2.Config.Rule(header=":path")
    rule.on_header_present.metadata_namespace = wellknown.METADATA_NAMESPACE
    rule.on_header_present.key = wellknown.METADATA_OWN_ANSWER_KEY
    rule.on_header_present.value = "true"
    config = header_to_metadata_pb2.Config(request_rules=[rule])
    return {
        wellknown.HEADER_TO_METADATA_FILTER: packed(
            route_components_pb2.FilterConfig(config=packed(config))
        )
    }


def _config() -> header_to_metadata_pb2.Config:
    rule = header_to_metadata_pb2.Config.Rule(header=":path")
    rule.on_header_present.metadata_namespace = wellknown.METADATA_NAMESPACE
    rule.on_header_present.key = wellknown.METADATA_DEPLOYMENT_KEY
    rule.on_header_present.type = header_to_metadata_pb2.Config.STRING
    rewrite = rule.on_header_present.regex_value_rewrite
    rewrite.pattern.regex = _MODEL_SEGMENT
    rewrite.substitution = r"\1"
    return header_to_metadata_pb2.Config(request_rules=[rule])
