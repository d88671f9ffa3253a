"""Immutable per-node snapshots: what the control plane wants one Envoy (one region) to run.

A snapshot holds, per type URL, the resources by name and a version. The version of a type only
changes when its content changes (compared by a digest of the deterministic serialization), so an
unchanged type never looks new to Envoy. Resources are copied and pre-packed into `Any` once when
they enter the cache, so later mutation of the caller's messages cannot change what was sent and
responses cost no serialization; a resource whose bytes did not change keeps its earlier copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType

from google.protobuf import any_pb2
from google.protobuf.message import Message


@dataclass(frozen=True)
class Resource:
    """One resource: a private copy of the message and the same message packed for the wire."""

    message: Message
    packed: any_pb2.Any

    @cached_property
    def version(self) -> str:
        """Delta xDS's per-resource version: a digest of the content, so the same content has
        the same version across control-plane restarts (a reconnecting Envoy's
        initial_resource_versions then match) and any change gives a new one (64 bits tell
        one name's successive contents apart). Computed on first use: state-of-the-world
        streams never pay for it."""
        return hashlib.sha256(self.packed.value).hexdigest()[:16]


@dataclass(frozen=True)
class TypeSnapshot:
    """All resources of one type for one node, with the version naming this exact content."""

    version: str
    digest: bytes
    resources: Mapping[str, Resource]


@dataclass(frozen=True)
class Snapshot:
    """One node's desired configuration: type URL -> TypeSnapshot."""

    types: Mapping[str, TypeSnapshot]


def digest_serialized(items: Iterable[tuple[str, bytes]]) -> bytes:
    """Digest of (name, serialized message) pairs, independent of their order."""
    h = hashlib.sha256()
    for name, data in sorted(items):
        encoded = name.encode()
        h.update(len(encoded).to_bytes(8, "big"))
        h.update(encoded)
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.digest()


def digest_resources(resources: Mapping[str, Resource]) -> bytes:
    """Digest of already-packed resources (same value as `digest_serialized` of their bytes)."""
    return digest_serialized((name, r.packed.value) for name, r in resources.items())


def build_type_snapshot(
    type_url: str,
    messages: Mapping[str, Message],
    previous: TypeSnapshot | None,
    new_version: Callable[[], str],
) -> TypeSnapshot:
    """A TypeSnapshot for `messages`; `previous` itself when the content did not change.

    `new_version` is called only when a new version is needed (content changed, or no previous),
    so version counters advance only on real changes.
    """
    serialized: dict[str, bytes] = {}
    for name, message in messages.items():
        got = message.DESCRIPTOR.full_name
        if not type_url.endswith("/" + got):
            raise ValueError(f"resource {name!r} is a {got}, not a {type_url}")
        serialized[name] = message.SerializeToString(deterministic=True)
    digest = digest_serialized(serialized.items())
    if previous is not None and previous.digest == digest:
        return previous
    kept = previous.resources if previous is not None else {}
    resources: dict[str, Resource] = {}
    for name, data in sorted(serialized.items()):
        same = kept.get(name)
        if same is not None and same.packed.value == data:
            resources[name] = same  # unchanged: no new copy (and delta's version is known)
            continue
        copy = type(messages[name]).FromString(data)
        packed = any_pb2.Any(type_url=type_url, value=data)
        resources[name] = Resource(message=copy, packed=packed)
    return TypeSnapshot(version=new_version(), digest=digest, resources=MappingProxyType(resources))
