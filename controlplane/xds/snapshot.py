"""Immutable per-node snapshots: what the control plane wants one Envoy (one region) to run.

A snapshot holds, per type URL, the resources by name and a version. The version of a type only
changes when its content changes (compared by a digest of the deterministic serialization), so an
unchanged type never looks new to Envoy. Resources are serialized and pre-packed into `Any` once
when they enter the cache, so responses cost no serialization; a resource whose bytes did not
change keeps its earlier copy, and the very message object handed in again is not serialized at
all (callers never mutate a message they handed in). A type's digest combines its resources'
digests, so a change among 40,000 clusters hashes one cluster, not all of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Protocol

from google.protobuf import any_pb2
from google.protobuf.message import Message


class WireForm(Protocol):
    """A resource its producer already serialized (a route table assembled from serialized
    parts), with a digest of its content: the cache takes its bytes as they are."""

    @property
    def message_type(self) -> type[Message]: ...

    @property
    def data(self) -> bytes: ...

    @property
    def digest(self) -> bytes: ...


@dataclass(frozen=True, eq=False)
class Resource:
    """One resource as it goes on the wire (packed into `Any` once), its digest, and the
    caller's message it was made from (`source`): handed in again, that very object is taken
    as unchanged, with no new serialization (the translate stage hands in the same objects
    for every deployment a change did not touch, and never mutates them)."""

    packed: any_pb2.Any
    message_type: type[Message] = field(repr=False)
    digest: bytes = field(repr=False)
    source: Message | None = field(default=None, repr=False)

    @cached_property
    def message(self) -> Message:
        """A private copy of the message, parsed from the wire bytes on first use (a route
        table of thousands of deployments is parsed only when something reads it)."""
        return self.message_type.FromString(self.packed.value)

    @cached_property
    def version(self) -> str:
        """Delta xDS's per-resource version: a digest of the content, so the same content has
        the same version across control-plane restarts (a reconnecting Envoy's
        initial_resource_versions then match) and any change gives a new one (64 bits tell
        one name's successive contents apart). Computed on first use: state-of-the-world
        streams never pay for it."""
        return hashlib.sha256(self.packed.value).hexdigest()[:16]


class Messages(Mapping[str, Message]):
    """Name -> message of some resources, each parsed only when read (an ACK of a whole
    type records what Envoy holds without parsing all of it)."""

    def __init__(self, resources: Mapping[str, Resource]) -> None:
        self._resources = resources

    def __getitem__(self, name: str) -> Message:
        return self._resources[name].message

    def __iter__(self) -> Iterator[str]:
        return iter(self._resources)

    def __len__(self) -> int:
        return len(self._resources)


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


def item_digest(name: str, data: bytes) -> bytes:
    """Digest of one resource: its name and serialized bytes."""
    h = hashlib.sha256()
    encoded = name.encode()
    h.update(len(encoded).to_bytes(8, "big"))
    h.update(encoded)
    h.update(len(data).to_bytes(8, "big"))
    h.update(data)
    return h.digest()


def _combined(digests: Iterable[bytes]) -> bytes:
    """Order-independent combination of item digests (their sum modulo 2**256): a type's
    digest comes from its resources' digests without hashing their bytes again."""
    total = sum(int.from_bytes(d, "big") for d in digests) % _MODULUS
    return total.to_bytes(32, "big")


_MODULUS = 1 << 256


def digest_serialized(items: Iterable[tuple[str, bytes]]) -> bytes:
    """Digest of (name, serialized message) pairs, independent of their order."""
    return _combined(item_digest(name, data) for name, data in items)


def digest_resources(resources: Mapping[str, Resource]) -> bytes:
    """Digest of already-packed resources (same value as `digest_serialized` of their bytes)."""
    return _combined(r.digest for r in resources.values())


def build_type_snapshot(
    type_url: str,
    messages: Mapping[str, Message | WireForm],
    previous: TypeSnapshot | None,
    new_version: Callable[[], str],
) -> TypeSnapshot:
    """A TypeSnapshot for `messages`; `previous` itself when the content did not change.

    `new_version` is called only when a new version is needed (content changed, or no previous),
    so version counters advance only on real changes. A message that is the very object
    `previous` was made from under the same name is not serialized again; one whose bytes did
    not change keeps the earlier copy. A resource in wire form is taken as it is, compared by
    its digest.
    """
    kept = previous.resources if previous is not None else {}
    resources: dict[str, Resource] = {}
    changed = previous is None or len(messages) != len(kept)
    for name, item in messages.items():
        old = kept.get(name)
        if old is not None and old.source is item:
            resources[name] = old
            continue
        if isinstance(item, Message):
            message_type: type[Message] = type(item)
            data = item.SerializeToString(deterministic=True)
            same = old is not None and old.packed.value == data
        else:
            message_type, data = item.message_type, item.data
            digest = hashlib.sha256(name.encode() + b"\0" + item.digest).digest()
            same = old is not None and old.digest == digest
        got = message_type.DESCRIPTOR.full_name
        if not type_url.endswith("/" + got):
            raise ValueError(f"resource {name!r} is a {got}, not a {type_url}")
        if old is not None and same:
            # Unchanged: no new copy (a parsed message and delta's version are kept).
            resources[name] = _with_source(old, item) if isinstance(item, Message) else old
            continue
        changed = True
        source: Message | None = None
        if isinstance(item, Message):
            digest = item_digest(name, data)
            source = item
        # (A resource in wire form is told by its digest: keeping it would keep its bytes twice.)
        packed = any_pb2.Any(type_url=type_url, value=data)
        resources[name] = Resource(packed, message_type, digest, source)
    if not changed and previous is not None and resources.keys() == kept.keys():
        # Same names, each the same bytes: the earlier snapshot, with the new sources noted.
        if any(resources[n] is not kept[n] for n in kept):
            return TypeSnapshot(previous.version, previous.digest, MappingProxyType(resources))
        return previous
    ordered = MappingProxyType(dict(sorted(resources.items())))
    return TypeSnapshot(version=new_version(), digest=digest_resources(ordered), resources=ordered)


def _with_source(resource: Resource, source: Message) -> Resource:
    """`resource` made from `source` now (same bytes, same digest, its parsed copies kept)."""
    out = Resource(resource.packed, resource.message_type, resource.digest, source)
    for cached in ("message", "version"):
        if cached in resource.__dict__:
            out.__dict__[cached] = resource.__dict__[cached]
    return out
