"""YAML documents (`kind`, `metadata`, `spec`) to Resource messages, with friendly errors.

The CLI parses files client-side; every problem names the file, the document and the field,
e.g. "deployments.yaml document 2 (Deployment mnist): unknown field 'replicaz' in spec".
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from controlplane.api.bounds import BOUNDS, FLOAT_TYPES, INTEGER_TYPES, finite, show
from controlplane.store import KINDS, AnyResource, wrap
from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import Deployment, Environment, Model, Region

API_VERSION = "meshline/v1"

_MESSAGES: dict[str, type[AnyResource]] = {
    "Model": Model,
    "Environment": Environment,
    "Deployment": Deployment,
    "Region": Region,
}
_TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec")

# What each integer type holds; a larger number cannot even be parsed into the message.
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_INTEGER_RANGES = {
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_FAILED_FIELD = re.compile(r"Failed to parse (\w+) field: ")


class DocumentError(ValueError):
    """A document that is not a valid resource; the message says where and why."""

    def __init__(self, where: str, field: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.field = field
        self.problem = problem


class _Problem(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def parse_resource_document(
    doc: object, source: str, index: int, *, base_dir: Path | None = None
) -> Resource:
    """Turn one YAML document into a Resource, or raise DocumentError.

    `source` names the file as the user knows it, `index` is the document's position in it
    counted from 0 (shown from 1). With `base_dir`, relative model version paths are made
    absolute against it (pass the YAML file's directory): the server needs absolute paths.
    Server-set fields (timestamps, generation, status) are accepted and dropped, so the
    output of `get` can be applied again.
    """
    where = f"{source} document {index + 1}"
    if not isinstance(doc, Mapping):
        raise DocumentError(
            where, "", f"expected a mapping with kind, metadata and spec, got {_show(doc)}"
        )
    kind = doc.get("kind")
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    label = " ".join(str(part) for part in (kind, name) if isinstance(part, str) and part)
    if label:
        where = f"{where} ({label})"
    try:
        message_type = _check_envelope(doc)
        body = {key: value for key, value in doc.items() if key in ("metadata", "spec")}
        _check_message(body, message_type.DESCRIPTOR, "")
        obj = message_type()
        try:
            json_format.ParseDict(body, obj)
        except json_format.ParseError as exc:
            raise _Problem(*_parse_error_text(str(exc))) from exc
    except _Problem as problem:
        raise DocumentError(where, problem.field, problem.problem) from None
    obj.metadata.ClearField("created_at")
    obj.metadata.ClearField("updated_at")
    obj.metadata.ClearField("generation")
    if isinstance(obj, Model) and base_dir is not None:
        for version in obj.spec.versions:
            if version.path and not os.path.isabs(os.path.expanduser(version.path)):
                version.path = os.path.abspath(os.path.join(base_dir, version.path))
    return wrap(obj)


def _check_envelope(doc: Mapping[object, object]) -> type[AnyResource]:
    """apiVersion, kind and metadata.name; returns the message type of the kind."""
    api_version = doc.get("apiVersion")
    if api_version is not None and api_version != API_VERSION:
        raise _Problem(
            "apiVersion", f"unsupported apiVersion {_show(api_version)} (expected {API_VERSION})"
        )
    kind = doc.get("kind")
    if kind is None:
        raise _Problem("kind", f"kind is required (one of {', '.join(KINDS)})")
    if not isinstance(kind, str) or kind not in _MESSAGES:
        raise _Problem("kind", f"unknown kind {_show(kind)} (expected one of {', '.join(KINDS)})")
    message_type = _MESSAGES[kind]
    allowed = _TOP_LEVEL + (
        ("status",) if "status" in message_type.DESCRIPTOR.fields_by_name else ()
    )
    for key in doc:
        if key not in allowed:
            raise _Problem(
                str(key), f"unknown field {_show_key(key)} (expected {', '.join(allowed)})"
            )
    metadata = doc.get("metadata")
    if not isinstance(metadata, Mapping):
        raise _Problem("metadata", "metadata with a name is required")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise _Problem("metadata.name", "metadata.name is required (a non-empty string)")
    return message_type


def _check_message(value: object, descriptor: Descriptor, path: str) -> None:
    """Reject unknown fields and wrong types with the exact path, before ParseDict does."""
    if not isinstance(value, Mapping):
        raise _Problem(path, f"{path}: expected a mapping, got {_show(value)}")
    fields: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        fields[field.name] = field
        fields[field.json_name] = field
    for key, item in value.items():
        field = fields.get(key) if isinstance(key, str) else None
        if field is None:
            where = f"in {path}" if path else "at the top level"
            raise _Problem(
                f"{path}.{key}" if path else str(key), f"unknown field {_show_key(key)} {where}"
            )
        child = f"{path}.{key}" if path else str(key)
        if item is None:
            continue
        if _is_map(field):
            if not isinstance(item, Mapping):
                raise _Problem(child, f"{child}: expected a mapping, got {_show(item)}")
            value_field = field.message_type.fields_by_name["value"]
            for map_key, map_value in item.items():
                _check_value(map_value, value_field, f"{child}.{map_key}")
        elif field.is_repeated:
            if not isinstance(item, list):
                raise _Problem(child, f"{child}: expected a list, got {_show(item)}")
            for i, element in enumerate(item):
                _check_value(element, field, f"{child}[{i}]")
        else:
            _check_value(item, field, child)


def _check_value(value: object, field: FieldDescriptor, path: str) -> None:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        _check_message(value, field.message_type, path)
    elif field.type == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            hint = " (quote it)" if isinstance(value, int | float | bool) else ""
            raise _Problem(path, f"{path}: expected a string, got {_show(value)}{hint}")
    elif field.type in INTEGER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Problem(path, f"{path}: expected an integer, got {_show(value)}")
        low, high = _INTEGER_RANGES[field.type]
        if not low <= value <= high:
            raise _Problem(path, f"{path}: {_out_of_range(field, value)}")
    elif field.type in FLOAT_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Problem(path, f"{path}: expected a number, got {_show(value)}")
        if not finite(value):
            raise _Problem(path, f"{path}: {_out_of_range(field, value)}")
    elif field.type == FieldDescriptor.TYPE_BOOL and not isinstance(value, bool):
        raise _Problem(path, f"{path}: expected true or false, got {_show(value)}")


def _out_of_range(field: FieldDescriptor, value: float) -> str:
    """A number the message cannot hold (NaN, infinity, beyond the integer type): the field's
    own range when it has one (the server checks the rest of it)."""
    bound = BOUNDS.get((field.containing_type.name, field.name))
    if bound is not None:
        return f"must be {bound.describe()}, got {show(value)}"
    return f"{show(value)} is out of range"


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def _parse_error_text(text: str) -> tuple[str, str]:
    """(path, message) of ParseDict's 'Failed to parse a field: Failed to parse b field: why'."""
    detail = text.splitlines()[0] if text else "invalid document"
    names = []
    while match := _FAILED_FIELD.match(detail):
        names.append(match.group(1))
        detail = detail[match.end() :]
    detail = re.sub(r' at "[^"]*"$', "", detail).rstrip(".")
    path = ".".join(names)
    return path, (f"{path}: {detail}" if path else detail)


def _show(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return repr(value)


def _show_key(key: object) -> str:
    return f"'{key}'"
