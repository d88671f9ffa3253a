"""DeltaStreamState on its own (no gRPC): the decisions the protocol tests cannot reach as
directly. Snapshots come from a real SnapshotCache; requests are DeltaDiscoveryRequests."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from controlplane.xds import CLUSTER, ENDPOINT, SnapshotCache
from controlplane.xds.delta_stream import DeltaKind, DeltaStreamState
from controlplane.xds.snapshot import Snapshot
from tests.controlplane.xds import resources as r

NODE = "eu"


class Harness:
    """A stream state, a cache to build its snapshots, and requests as Envoy writes them."""

    def __init__(self) -> None:
        self.cache = SnapshotCache(epoch=3)
        nonces = itertools.count(1)
        self.state = DeltaStreamState(self.cache.next_version, lambda: f"n{next(nonces)}")

    def snapshot(self, **parts: list[object]) -> Snapshot:
        self.cache.set_resources(NODE, r.resources(**parts))
        snapshot = self.cache.snapshot(NODE)
        assert snapshot is not None
        return snapshot

    def request(
        self,
        type_url: str,
        subscribe: Iterable[str] = (),
        unsubscribe: Iterable[str] = (),
        nonce: str = "",
        error: str = "",
    ) -> discovery_pb2.DeltaDiscoveryRequest:
        request = discovery_pb2.DeltaDiscoveryRequest(
            type_url=type_url,
            resource_names_subscribe=list(subscribe),
            resource_names_unsubscribe=list(unsubscribe),
            response_nonce=nonce,
        )
        if error:
            request.error_detail.CopyFrom(status_pb2.Status(code=13, message=error))
        return request


def _names(response: object) -> set[str]:
    return {x.name for x in response.resources}  # type: ignore[attr-defined]


def test_explicit_wildcard_and_leaving_it() -> None:
    h = Harness()
    snap = h.snapshot(clusters=[r.cluster("a"), r.cluster("b")])
    h.state.on_request(h.request(CLUSTER, ["*"]))
    (response,) = h.state.plan(snap).responses
    assert _names(response) == {"a", "b"}
    ack = h.state.on_request(h.request(CLUSTER, nonce=response.nonce))
    assert ack.kind is DeltaKind.ACK and set(ack.answers[0].resources) == {"a", "b"}

    # Keeping only a by name: b is dropped, and the answer says Envoy holds a only. A name
    # subscribed is sent (again: Envoy may have dropped its copy); b, changed, is not.
    left = h.state.on_request(h.request(CLUSTER, ["a"], ["*"], nonce=response.nonce))
    assert left.kind is DeltaKind.SUBSCRIBE
    assert set(left.answers[0].resources) == {"a"}
    (again,) = h.state.plan(h.snapshot(clusters=[r.cluster("a"), r.cluster("b", 2000)])).responses
    assert _names(again) == {"a"} and not again.removed_resources


def test_versions_arriving_in_flight_are_answered_with_the_response() -> None:
    h = Harness()
    first = h.snapshot(assignments=[r.load_assignment("a")])
    h.state.on_request(h.request(ENDPOINT, ["a"]))
    (response,) = h.state.plan(first).responses
    # Two snapshot versions whose changes Envoy did not subscribe to, while the response flies.
    second = h.snapshot(assignments=[r.load_assignment("a"), r.load_assignment("x")])
    assert h.state.plan(second).responses == ()
    third = h.snapshot(assignments=[r.load_assignment("a"), r.load_assignment("y")])
    assert h.state.plan(third).responses == ()
    ack = h.state.on_request(h.request(ENDPOINT, nonce=response.nonce))
    versions = [a.snapshot_version for a in ack.answers]
    assert versions == [
        first.types[ENDPOINT].version,
        second.types[ENDPOINT].version,
        third.types[ENDPOINT].version,
    ]
    assert all(a.accepted for a in ack.answers)
    assert h.state.plan(third).answers == ()  # answered already


def test_a_version_without_a_response_still_carries_a_standing_rejection() -> None:
    h = Harness()
    h.state.on_request(h.request(ENDPOINT, ["a"]))
    (good,) = h.state.plan(h.snapshot(assignments=[r.load_assignment("a")])).responses
    h.state.on_request(h.request(ENDPOINT, nonce=good.nonce))
    (bad,) = h.state.plan(h.snapshot(assignments=[r.load_assignment("a", [1])])).responses
    nack = h.state.on_request(h.request(ENDPOINT, nonce=bad.nonce, error="bad port"))
    assert nack.kind is DeltaKind.NACK and nack.answers[0].changed == {"a"}

    unrelated = h.snapshot(assignments=[r.load_assignment("a", [1]), r.load_assignment("z")])
    plan = h.state.plan(unrelated)
    assert plan.responses == ()  # a is not sent again
    (answer,) = plan.answers
    assert answer.error == "bad port" and answer.changed == {"a"}
    assert answer.snapshot_version == unrelated.types[ENDPOINT].version


def test_a_rejection_no_longer_stands_once_the_snapshot_drops_the_resource() -> None:
    """A named resource the snapshot drops is not removed from Envoy (it unsubscribes when its
    cluster goes), but a rejection of it no longer concerns the new version."""
    h = Harness()
    h.state.on_request(h.request(ENDPOINT, ["a", "b"]))
    snap = h.snapshot(assignments=[r.load_assignment("a")])
    (good,) = h.state.plan(snap).responses
    h.state.on_request(h.request(ENDPOINT, nonce=good.nonce))
    with_b = h.snapshot(assignments=[r.load_assignment("a"), r.load_assignment("b")])
    (bad,) = h.state.plan(with_b).responses
    assert _names(bad) == {"b"}
    h.state.on_request(h.request(ENDPOINT, nonce=bad.nonce, error="bad b"))

    without_b = h.snapshot(assignments=[r.load_assignment("a", [9001])])
    (only_a,) = h.state.plan(without_b).responses
    assert _names(only_a) == {"a"} and not only_a.removed_resources
    ack = h.state.on_request(h.request(ENDPOINT, nonce=only_a.nonce))
    assert ack.answers[0].accepted
    # And with nothing to send at all: answered as accepted at once.
    h.state.on_request(h.request(ENDPOINT, nonce=only_a.nonce))
    h.snapshot(assignments=[r.load_assignment("a", [9001]), r.load_assignment("b")])
    (bad_again,) = h.state.plan(h.cache.snapshot(NODE)).responses
    h.state.on_request(h.request(ENDPOINT, nonce=bad_again.nonce, error="bad b"))
    dropped = h.snapshot(assignments=[r.load_assignment("a", [9001])])
    plan = h.state.plan(dropped)
    assert plan.responses == () and plan.answers[0].accepted


def test_unsubscribing_one_of_a_rejected_pair_offers_the_other_again() -> None:
    h = Harness()
    snap = h.snapshot(assignments=[r.load_assignment("a"), r.load_assignment("b")])
    h.state.on_request(h.request(ENDPOINT, ["a", "b"]))
    (pair,) = h.state.plan(snap).responses
    h.state.on_request(h.request(ENDPOINT, nonce=pair.nonce, error="one of them is bad"))
    assert h.state.plan(snap).responses == ()  # rejected: not resent unchanged

    # Envoy lets go of a (its cluster went): the culprit may have been a, so b comes again.
    h.state.on_request(h.request(ENDPOINT, unsubscribe=["a"], nonce=pair.nonce))
    (again,) = h.state.plan(snap).responses
    assert _names(again) == {"b"}


def test_a_changed_cluster_brings_its_endpoints_under_their_service_name() -> None:
    h = Harness()

    def cluster(timeout_ms: int) -> object:
        c = r.cluster("c", timeout_ms)
        c.eds_cluster_config.service_name = "svc"
        return c

    snap = h.snapshot(clusters=[cluster(1000)], assignments=[r.load_assignment("svc")])
    h.state.on_request(h.request(CLUSTER))
    (cds,) = h.state.plan(snap).responses
    h.state.on_request(h.request(CLUSTER, nonce=cds.nonce))
    h.state.on_request(h.request(ENDPOINT, ["svc"]))
    (eds,) = h.state.plan(snap).responses
    h.state.on_request(h.request(ENDPOINT, nonce=eds.nonce))
    assert h.state.plan(snap).responses == ()

    changed = h.snapshot(clusters=[cluster(2000)], assignments=[r.load_assignment("svc")])
    cds2, eds2 = h.state.plan(changed).responses
    assert cds2.type_url == CLUSTER and _names(cds2) == {"c"}
    assert eds2.type_url == ENDPOINT and _names(eds2) == {"svc"}
    assert eds2.resources[0].version == eds.resources[0].version  # the same endpoints again


def test_a_stale_rejection_records_nothing() -> None:
    h = Harness()
    h.state.on_request(h.request(CLUSTER))
    (first,) = h.state.plan(h.snapshot(clusters=[r.cluster("a")])).responses
    verdict = h.state.on_request(h.request(CLUSTER, nonce="n99", error="not ours"))
    assert verdict.kind is DeltaKind.STALE and verdict.answers == ()
    ack = h.state.on_request(h.request(CLUSTER, nonce=first.nonce))
    assert ack.kind is DeltaKind.ACK and ack.answers[0].accepted


def test_an_ack_that_also_unsubscribes_leaves_the_dropped_resource_out_of_what_envoy_holds() -> (
    None
):
    h = Harness()
    snap = h.snapshot(
        clusters=[r.cluster("a"), r.cluster("b")],
        assignments=[r.load_assignment("a"), r.load_assignment("b")],
    )
    h.state.on_request(h.request(ENDPOINT, ["a", "b"]))
    (eds,) = h.state.plan(snap).responses
    assert _names(eds) == {"a", "b"}
    # Envoy's ACK of that response also drops b (CDS removed its cluster meanwhile).
    ack = h.state.on_request(h.request(ENDPOINT, unsubscribe=["b"], nonce=eds.nonce))
    assert ack.kind is DeltaKind.ACK
    assert set(ack.answers[0].resources) == {"a"}
    # The recorded content is parsed on demand, and it is the endpoints Envoy holds.
    assert ack.answers[0].resources["a"].cluster_name == "a"  # type: ignore[attr-defined]
