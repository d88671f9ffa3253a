"""Readable YAML of generated resources (golden files, `meshline` dumps, debugging)."""

from __future__ import annotations

from typing import Any

import yaml
from google.protobuf import json_format
from google.protobuf.message import Message

from controlplane.translate import wellknown
from controlplane.translate.resources import EnvoyResources
from controlplane.translate.tls import redacted


def message_to_dict(message: Message) -> dict[str, Any]:
    """Proto field names (as in Envoy's docs), defaults left out."""
    result: dict[str, Any] = _plain(
        json_format.MessageToDict(message, preserving_proto_field_name=True)
    )
    return result


def _plain(value: Any) -> Any:
    """MessageToDict gives OrderedDicts for Any fields; safe_dump wants plain dicts."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def to_yaml(document: object) -> str:
    return yaml.safe_dump(document, sort_keys=True, default_flow_style=False, width=100)


def resources_to_yaml(resources: EnvoyResources) -> str:
    """All resources, grouped by xDS type URL and resource name; a secret's private key shows
    as `[redacted]` (as in Envoy's own config_dump)."""
    by_type = resources.by_type_url()
    if wellknown.SECRET_TYPE_URL in by_type:
        by_type[wellknown.SECRET_TYPE_URL] = {
            name: redacted(secret) for name, secret in resources.secrets.items()
        }
    return to_yaml(
        {
            type_url: {name: message_to_dict(message) for name, message in by_name.items()}
            for type_url, by_name in by_type.items()
        }
    )
