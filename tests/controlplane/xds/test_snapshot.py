"""Type snapshots at scale: a message handed in again is not serialized again, a resource in
wire form is taken as it is, a type's digest comes from its resources' digests, and a
resource's message is parsed only when read."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass

from envoy.config.route.v3 import route_pb2
from google.protobuf.message import Message

from controlplane.xds import CLUSTER, ROUTE, SnapshotCache
from controlplane.xds.snapshot import (
    Messages,
    build_type_snapshot,
    digest_resources,
    digest_serialized,
)
from tests.controlplane.xds import resources as r


@dataclass(frozen=True)
class Wire:
    """A resource in wire form, as the translate stage hands route tables over."""

    message_type: type[Message]
    data: bytes
    digest: bytes


def _wire(config: route_pb2.RouteConfiguration, digest: bytes | None = None) -> Wire:
    data = config.SerializeToString(deterministic=True)
    return Wire(route_pb2.RouteConfiguration, data, digest or hashlib.sha256(data).digest())


class _Counter:
    def __init__(self) -> None:
        self._count = itertools.count(1)

    def __call__(self) -> str:
        return f"v{next(self._count)}"


def test_the_same_message_object_is_not_serialized_again() -> None:
    versions = _Counter()
    a, b = r.cluster("a"), r.cluster("b")
    first = build_type_snapshot(CLUSTER, {"a": a, "b": b}, None, versions)
    again = build_type_snapshot(CLUSTER, {"a": a, "b": b}, first, versions)
    assert again is first
    # One new message among kept ones: only it is new, the others' resources are the same.
    c = r.cluster("b", 2000)
    changed = build_type_snapshot(CLUSTER, {"a": a, "b": c}, first, versions)
    assert changed.version != first.version
    assert changed.resources["a"] is first.resources["a"]
    assert changed.resources["b"].message == c


def test_a_fresh_object_with_the_same_bytes_keeps_the_version_and_the_copy() -> None:
    versions = _Counter()
    first = build_type_snapshot(CLUSTER, {"a": r.cluster("a")}, None, versions)
    parsed = first.resources["a"].message
    fresh = r.cluster("a")
    again = build_type_snapshot(CLUSTER, {"a": fresh}, first, versions)
    assert again.version == first.version and again.digest == first.digest
    assert again.resources["a"].packed is first.resources["a"].packed
    assert again.resources["a"].message is parsed
    # That object is now the one remembered: handed in once more, nothing moves.
    assert build_type_snapshot(CLUSTER, {"a": fresh}, again, versions) is again


def test_the_type_digest_combines_the_resources_digests() -> None:
    versions = _Counter()
    clusters = {n: r.cluster(n) for n in ("a", "b", "c")}
    snapshot = build_type_snapshot(CLUSTER, clusters, None, versions)
    serialized = {n: m.SerializeToString(deterministic=True) for n, m in clusters.items()}
    assert snapshot.digest == digest_serialized(serialized.items())
    assert snapshot.digest == digest_resources(snapshot.resources)
    assert digest_serialized(reversed(list(serialized.items()))) == snapshot.digest
    # A name is part of the digest: the same bytes under another name differ.
    assert digest_serialized([("x", serialized["a"])]) != digest_serialized(
        [("a", serialized["a"])]
    )


def test_a_resource_in_wire_form_is_taken_as_it_is_and_compared_by_its_digest() -> None:
    versions = _Counter()
    table = r.route_config("routes", "a")
    first = build_type_snapshot(ROUTE, {"routes": _wire(table)}, None, versions)
    assert first.resources["routes"].packed.value == table.SerializeToString(deterministic=True)
    assert first.resources["routes"].message == table
    same = build_type_snapshot(ROUTE, {"routes": _wire(table)}, first, versions)
    assert same.version == first.version
    other = r.route_config("routes", "b")
    changed = build_type_snapshot(ROUTE, {"routes": _wire(other)}, same, versions)
    assert changed.version != first.version
    assert changed.resources["routes"].message == other


def test_a_wire_resource_of_the_wrong_type_is_refused() -> None:
    cache = SnapshotCache(epoch=1)
    wrong = Wire(route_pb2.RouteConfiguration, b"", b"x")
    try:
        cache.set_resources("eu", {CLUSTER: {"a": wrong}})
    except ValueError as exc:
        assert "not a" in str(exc)
    else:
        raise AssertionError("a route table given as a cluster was taken")
    assert not cache.has_snapshot("eu")


def test_messages_are_parsed_only_when_read() -> None:
    versions = _Counter()
    snapshot = build_type_snapshot(CLUSTER, {n: r.cluster(n) for n in ("a", "b")}, None, versions)
    view = Messages(snapshot.resources)
    assert len(view) == 2 and sorted(view) == ["a", "b"]
    assert all("message" not in res.__dict__ for res in snapshot.resources.values())
    assert view["a"] == r.cluster("a")
    assert "message" in snapshot.resources["a"].__dict__
    assert "message" not in snapshot.resources["b"].__dict__


def test_an_unchanged_set_does_not_wake_the_streams() -> None:
    cache = SnapshotCache(epoch=1)
    woken: list[int] = []
    cache.connect("eu", lambda: woken.append(1))
    clusters = {CLUSTER: {"a": r.cluster("a")}}
    cache.set_resources("eu", clusters)
    assert len(woken) == 1
    cache.set_resources("eu", {CLUSTER: {"a": r.cluster("a")}})  # fresh, equal objects
    assert len(woken) == 1
    cache.set_resources("eu", {CLUSTER: {"a": r.cluster("a", 2000)}})
    assert len(woken) == 2
