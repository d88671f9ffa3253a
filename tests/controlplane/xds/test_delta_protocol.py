"""Incremental ADS protocol tests: the real AdsServer's DeltaAggregatedResources on a loopback
grpc.aio server, a raw delta client.

"Nothing was sent" is proven without timing, as in test_ads_protocol.py: the stream handles
requests strictly in order, so after a probe request (the first request of another type), the
next response must be the probe's answer; anything sent wrongly before would arrive first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
from google.protobuf.message import Message

from controlplane.xds import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, SnapshotCache
from tests.controlplane.xds import resources as r
from tests.controlplane.xds.ads_client import eventually
from tests.controlplane.xds.delta_client import DeltaClient, names, updates

pytestmark = pytest.mark.timeout(60)

Connect = Callable[[str], Awaitable[DeltaClient]]
NODE = "eu-west"


@pytest.fixture
async def connect(ads_address: str) -> AsyncIterator[Connect]:
    """connect(node_id) -> a fresh delta ADS stream; all are closed at the end."""
    channel = grpc.aio.insecure_channel(ads_address)
    clients: list[DeltaClient] = []

    async def _connect(node_id: str) -> DeltaClient:
        client = DeltaClient(channel, node_id)
        clients.append(client)
        return client

    try:
        yield _connect
    finally:
        for client in clients:
            await client.close()
        await channel.close()


def _base(**over: list[Message]) -> r.Resources:
    parts = {
        "clusters": [r.cluster("a")],
        "assignments": [r.load_assignment("a")],
        "listeners": [r.listener("l", 10000, "routes")],
        "routes": [r.route_config("routes", "a")],
    }
    parts.update(over)
    return r.resources(**parts)


def _version(cache: SnapshotCache, type_url: str) -> str:
    version = cache.node_status(NODE).types[type_url].snapshot_version
    assert version is not None
    return version


async def _acked(cache: SnapshotCache, type_url: str, version: str) -> None:
    def done() -> bool:
        t = cache.node_status(NODE).types.get(type_url)
        return t is not None and t.acked_version == version

    await eventually(done, f"{type_url} ACK of {version}")


async def _answered(cache: SnapshotCache, type_url: str, version: str) -> None:
    def done() -> bool:
        t = cache.node_status(NODE).types.get(type_url)
        return t is not None and version in t.answers

    await eventually(done, f"an answer to {type_url} {version}")


async def _probe(client: DeltaClient) -> None:
    """Ask for LDS for the first time; the next response must be exactly that answer."""
    await client.subscribe(LISTENER)
    response = await client.recv()
    assert response.type_url == LISTENER, f"unexpected {response.type_url} before the probe"
    await client.ack(response)


async def _subscribe_all(client: DeltaClient, endpoints: list[str]) -> None:
    """CDS, EDS, LDS, RDS subscribed and ACKed, in Envoy's order."""
    for type_url, wanted in ((CLUSTER, []), (ENDPOINT, endpoints), (LISTENER, []),
                             (ROUTE, ["routes"])):  # fmt: skip
        await client.subscribe(type_url, wanted)
        await client.ack(await client.recv())


async def test_silent_without_snapshot_then_the_whole_wildcard_set(
    cache: SnapshotCache, connect: Connect
) -> None:
    client = await connect(NODE)
    await client.subscribe(CLUSTER)
    await eventually(lambda: cache.node_status(NODE).connected, "connected")
    cache.set_resources(NODE, _base(clusters=[r.cluster("a"), r.cluster("b")]))
    response = await client.recv()
    assert response.type_url == CLUSTER
    assert response.system_version_info == _version(cache, CLUSTER)
    assert names(response) == {"a", "b"} and not response.removed_resources
    assert response.nonce
    # Each resource's version is a digest of its content: equal content, equal version.
    versions = {name: version for name, (version, _) in updates(response).items()}
    assert versions["a"] != versions["b"]
    await client.ack(response)
    await _acked(cache, CLUSTER, response.system_version_info)
    status = cache.node_status(NODE).types[CLUSTER]
    assert status.in_sync and status.nack is None and status.last_ack_at is not None
    assert status.sent_version == status.acked_version
    assert set(cache.acked_resources(NODE, CLUSTER)) == {"a", "b"}
    assert status.answers == {response.system_version_info: None}


async def test_a_change_sends_only_what_changed_and_removals_by_name(
    cache: SnapshotCache, connect: Connect
) -> None:
    cache.set_resources(NODE, _base(clusters=[r.cluster("a"), r.cluster("b"), r.cluster("c")]))
    client = await connect(NODE)
    await client.subscribe(CLUSTER)
    first = await client.recv()
    await client.ack(first)

    cache.set_resources(NODE, _base(clusters=[r.cluster("a"), r.cluster("b", 2000)]))
    change = await client.recv()
    assert change.type_url == CLUSTER
    assert names(change) == {"b"} and list(change.removed_resources) == ["c"]
    assert updates(change)["b"][0] != updates(first)["b"][0]
    assert change.system_version_info == _version(cache, CLUSTER)
    await client.ack(change)
    await _acked(cache, CLUSTER, change.system_version_info)
    assert set(cache.acked_resources(NODE, CLUSTER)) == {"a", "b"}
    assert cache.acked_resources(NODE, CLUSTER)["b"].connect_timeout.seconds == 2

    # A burst that ends where Envoy is (b changed and changed back before the stream woke):
    # nothing to send, and the final version is answered at once.
    cache.set_resources(NODE, _base(clusters=[r.cluster("a"), r.cluster("b", 3000)]))
    cache.set_resources(NODE, _base(clusters=[r.cluster("a"), r.cluster("b", 2000)]))
    restored = _version(cache, CLUSTER)
    assert restored != change.system_version_info
    await _acked(cache, CLUSTER, restored)
    await _probe(client)


async def test_a_rejected_resource_is_not_resent_until_it_changes(
    cache: SnapshotCache, connect: Connect
) -> None:
    cache.set_resources(NODE, _base(clusters=[r.cluster("a"), r.cluster("b")]))
    client = await connect(NODE)
    await client.subscribe(CLUSTER)
    good = await client.recv()
    await client.ack(good)

    cache.set_resources(NODE, _base(clusters=[r.cluster("a", 2000), r.cluster("b")]))
    bad = await client.recv()
    assert names(bad) == {"a"}
    await client.nack(bad, "Error adding/updating cluster(s) a: out of range")

    def nacked() -> bool:
        return cache.node_status(NODE).types[CLUSTER].nack is not None

    await eventually(nacked, "NACK recorded")
    status = cache.node_status(NODE).types[CLUSTER]
    assert status.nack is not None
    assert status.nack.message == "Error adding/updating cluster(s) a: out of range"
    assert status.nack.version == bad.system_version_info == status.nack.snapshot_version
    assert status.nack.changed == {"a"}
    assert status.acked_version == good.system_version_info and not status.in_sync
    assert cache.acked_resources(NODE, CLUSTER)["a"].connect_timeout.seconds == 1

    # Another cluster changes: only it is sent; a (rejected, unchanged) is not. That version
    # still holds the rejected a, so Envoy does not run it: answered as rejected, with the text.
    cache.set_resources(NODE, _base(clusters=[r.cluster("a", 2000), r.cluster("b", 3000)]))
    other = await client.recv()
    assert other.type_url == CLUSTER and names(other) == {"b"}
    await client.ack(other)
    await _answered(cache, CLUSTER, other.system_version_info)
    status = cache.node_status(NODE).types[CLUSTER]
    answer = status.answers[other.system_version_info]
    assert answer is not None and answer.message.startswith("Error adding/updating cluster(s) a")
    assert answer.changed == {"a"} and not status.in_sync

    # a changes: sent, and its ACK clears the NACK.
    cache.set_resources(NODE, _base(clusters=[r.cluster("a", 4000), r.cluster("b", 3000)]))
    fixed = await client.recv()
    assert names(fixed) == {"a"}
    await client.ack(fixed)
    await _acked(cache, CLUSTER, fixed.system_version_info)
    status = cache.node_status(NODE).types[CLUSTER]
    assert status.nack is None and status.in_sync
    assert status.answers[fixed.system_version_info] is None


async def test_resources_rejected_together_are_offered_again_when_one_goes_away(
    cache: SnapshotCache, connect: Connect
) -> None:
    """Envoy's NACK refuses a response; its text need not say which resource. When one of
    them goes away (the control plane dropped the culprit), the others come again with it."""
    cache.set_resources(NODE, _base())
    client = await connect(NODE)
    await client.subscribe(CLUSTER)
    await client.ack(await client.recv())

    cache.set_resources(NODE, _base(clusters=[r.cluster("a"), r.cluster("good"), r.cluster("bad")]))
    both = await client.recv()
    assert names(both) == {"good", "bad"}
    await client.nack(both, "Duration out-of-range")
    await eventually(lambda: cache.node_status(NODE).types[CLUSTER].nack is not None, "NACK")
    nack = cache.node_status(NODE).types[CLUSTER].nack
    assert nack is not None and nack.changed == {"good", "bad"}

    cache.set_resources(NODE, _base(clusters=[r.cluster("a"), r.cluster("good")]))
    again = await client.recv()
    assert names(again) == {"good"}
    # Envoy never took bad: nothing to remove, but removing an unknown name is harmless.
    assert list(again.removed_resources) == ["bad"]
    await client.ack(again)
    await _acked(cache, CLUSTER, again.system_version_info)
    assert cache.node_status(NODE).types[CLUSTER].in_sync
    assert set(cache.acked_resources(NODE, CLUSTER)) == {"a", "good"}


async def test_reconnect_sends_only_what_differs_from_initial_resource_versions(
    cache: SnapshotCache, connect: Connect
) -> None:
    cache.set_resources(NODE, _base(clusters=[r.cluster("a"), r.cluster("b"), r.cluster("c")]))
    first = await connect(NODE)
    await first.subscribe(CLUSTER)
    await first.ack(await first.recv())
    held = first.versions(CLUSTER)
    await first.close()
    await eventually(lambda: not cache.node_status(NODE).connected, "disconnected")

    # While the stream was gone: b changed, c went away, d came.
    cache.set_resources(
        NODE, _base(clusters=[r.cluster("a"), r.cluster("b", 2000), r.cluster("d")])
    )
    second = await connect(NODE)
    await second.subscribe(CLUSTER, initial=held)
    response = await second.recv()
    assert names(response) == {"b", "d"}
    assert list(response.removed_resources) == ["c"]
    await second.ack(response)
    await _acked(cache, CLUSTER, response.system_version_info)
    # a was known to Envoy at the version we would send: it counts as ACKed content.
    assert set(cache.acked_resources(NODE, CLUSTER)) == {"a", "b", "d"}

    # An Envoy that has everything: its first request is still answered (empty), so an Envoy
    # that waits for its first CDS goes on.
    third = await connect(NODE)
    await third.subscribe(CLUSTER, initial=second.versions(CLUSTER))
    nothing = await third.recv()
    assert not nothing.resources and not nothing.removed_resources
    assert nothing.system_version_info == _version(cache, CLUSTER)


async def test_named_subscriptions_unsubscribe_and_names_that_appear_later(
    cache: SnapshotCache, connect: Connect
) -> None:
    cache.set_resources(NODE, _base())
    client = await connect(NODE)
    await client.subscribe(ROUTE, ["routes", "later"])
    rds = await client.recv()
    assert rds.type_url == ROUTE and names(rds) == {"routes"}
    await client.ack(rds)

    cache.set_resources(
        NODE, _base(routes=[r.route_config("routes", "a"), r.route_config("later", "a")])
    )
    appeared = await client.recv()
    assert names(appeared) == {"later"}  # routes did not change
    await client.ack(appeared)

    # A route table the snapshot drops is not removed from a named subscription (as in state
    # of the world: the listener naming it unsubscribes); one unsubscribed is forgotten, and
    # sent again when subscribed again.
    cache.set_resources(NODE, _base())
    await client.request(ROUTE, unsubscribe=["later"])
    await _probe(client)
    cache.set_resources(
        NODE, _base(routes=[r.route_config("routes", "a"), r.route_config("later", "a")])
    )
    await client.request(ROUTE, ["later"])
    back = await client.recv()
    assert back.type_url == ROUTE and names(back) == {"later"}


async def test_a_change_outside_the_subscription_is_answered_without_a_response(
    cache: SnapshotCache, connect: Connect
) -> None:
    cache.set_resources(NODE, _base())
    client = await connect(NODE)
    await client.subscribe(ENDPOINT, ["a"])
    await client.ack(await client.recv())
    await _acked(cache, ENDPOINT, _version(cache, ENDPOINT))

    cache.set_resources(NODE, _base(assignments=[r.load_assignment("a"), r.load_assignment("z")]))
    newer = _version(cache, ENDPOINT)
    await _acked(cache, ENDPOINT, newer)  # Envoy has all of it that it subscribed to
    assert cache.node_status(NODE).types[ENDPOINT].in_sync
    await _probe(client)  # and nothing was sent


async def test_push_order_is_sds_cds_eds_lds_rds(cache: SnapshotCache, connect: Connect) -> None:
    secrets = [r.ca_secret("mesh-ca", "ca 1")]
    cache.set_resources(NODE, _base(secrets=secrets))
    client = await connect(NODE)
    await client.subscribe(SECRET, ["mesh-ca"])
    await client.ack(await client.recv())
    await _subscribe_all(client, ["a", "c"])
    await _acked(cache, ROUTE, _version(cache, ROUTE))

    cache.set_resources(
        NODE,
        _base(
            clusters=[r.cluster("a"), r.cluster("c")],
            assignments=[r.load_assignment("a", [9002]), r.load_assignment("c")],
            listeners=[r.listener("l", 10000, "routes"), r.listener("l2", 10001, "routes")],
            routes=[r.route_config("routes", "c")],
            secrets=[r.ca_secret("mesh-ca", "ca 2")],
        ),
    )
    pushed = [await client.recv() for _ in range(5)]
    assert [x.type_url for x in pushed] == [SECRET, CLUSTER, ENDPOINT, LISTENER, ROUTE]
    assert [names(x) for x in pushed] == [{"mesh-ca"}, {"c"}, {"a", "c"}, {"l2"}, {"routes"}]


async def test_cluster_removal_waits_until_routes_are_acked(
    cache: SnapshotCache, connect: Connect
) -> None:
    cache.set_resources(
        NODE,
        _base(
            clusters=[r.cluster("a"), r.cluster("b")],
            assignments=[r.load_assignment("a"), r.load_assignment("b")],
            routes=[r.route_config("routes", "b")],
        ),
    )
    client = await connect(NODE)
    await _subscribe_all(client, ["a", "b"])
    await _acked(cache, ROUTE, _version(cache, ROUTE))

    # The route moves from b to a new cluster c, and b goes away.
    cache.set_resources(
        NODE,
        _base(
            clusters=[r.cluster("a"), r.cluster("c")],
            assignments=[r.load_assignment("a"), r.load_assignment("c")],
            routes=[r.route_config("routes", "c")],
        ),
    )
    new_cds = _version(cache, CLUSTER)
    adds = await client.recv()
    assert adds.type_url == CLUSTER and names(adds) == {"c"} and not adds.removed_resources
    assert adds.system_version_info != new_cds  # an intermediate version: b is still there
    rds = await client.recv()
    assert rds.type_url == ROUTE  # EDS (a, b subscribed) and LDS did not change
    await client.ack(adds)
    await client.request(ENDPOINT, ["c"])  # Envoy subscribes to c's endpoints
    eds = await client.recv()
    assert eds.type_url == ENDPOINT and names(eds) == {"c"}
    await client.ack(eds)
    await _answered(cache, CLUSTER, new_cds)  # the intermediate CDS answers the snapshot
    assert cache.node_status(NODE).types[CLUSTER].acked_version == adds.system_version_info

    await client.ack(rds)
    final = await client.recv()
    assert final.type_url == CLUSTER and not final.resources
    assert list(final.removed_resources) == ["b"] and final.system_version_info == new_cds
    await client.ack(final)
    await _acked(cache, CLUSTER, new_cds)
    assert cache.node_status(NODE).types[CLUSTER].in_sync
    assert set(cache.acked_resources(NODE, CLUSTER)) == {"a", "c"}


async def test_unacked_cds_holds_routes_but_not_endpoints(
    cache: SnapshotCache, connect: Connect
) -> None:
    cache.set_resources(NODE, _base())
    client = await connect(NODE)
    await _subscribe_all(client, ["a"])
    await _acked(cache, ROUTE, _version(cache, ROUTE))

    cache.set_resources(
        NODE,
        _base(
            clusters=[r.cluster("a"), r.cluster("b")],
            assignments=[r.load_assignment("a"), r.load_assignment("b")],
        ),
    )
    cds = await client.recv()
    assert cds.type_url == CLUSTER and names(cds) == {"b"}
    # Like Envoy, hold the CDS ACK while b warms; its endpoints must still come.
    await client.request(ENDPOINT, ["b"])
    eds = await client.recv()
    assert eds.type_url == ENDPOINT and names(eds) == {"b"}
    await client.ack(eds)

    # Clusters and routes change while CDS is unacknowledged: endpoints go, routes wait.
    cache.set_resources(
        NODE,
        _base(
            clusters=[r.cluster("a"), r.cluster("b", 2000)],
            assignments=[r.load_assignment("a"), r.load_assignment("b", [9005])],
            routes=[r.route_config("routes", "b")],
        ),
    )
    eds2 = await client.recv()
    assert eds2.type_url == ENDPOINT and names(eds2) == {"b"}
    await client.ack(eds2)
    await _acked(cache, ENDPOINT, eds2.system_version_info)
    await client.ack(cds)  # b is warm
    cds2 = await client.recv()
    assert cds2.type_url == CLUSTER  # the route table was not sent before the new cluster
    # b is re-created: Envoy waits for its endpoints without asking, so they come again.
    again = await client.recv()
    assert again.type_url == ENDPOINT and names(again) == {"b"}
    assert updates(again)["b"][0] == updates(eds2)["b"][0]
    rds = await client.recv()
    assert rds.type_url == ROUTE


async def test_stale_nonce_is_ignored_but_its_subscription_counts(
    cache: SnapshotCache, connect: Connect
) -> None:
    cache.set_resources(NODE, _base(assignments=[r.load_assignment("a"), r.load_assignment("b")]))
    client = await connect(NODE)
    await client.subscribe(CLUSTER)
    first = await client.recv()
    await client.ack(first)
    await _acked(cache, CLUSTER, first.system_version_info)

    cache.set_resources(
        NODE,
        _base(
            clusters=[r.cluster("a"), r.cluster("b")],
            assignments=[r.load_assignment("a"), r.load_assignment("b")],
        ),
    )
    second = await client.recv()
    await client.request(CLUSTER, nonce=first.nonce, error="stale rejection")
    await client.request(CLUSTER, nonce="no-such-nonce", error="made-up rejection")
    await client.ack(second)
    await _acked(cache, CLUSTER, second.system_version_info)
    assert cache.node_status(NODE).types[CLUSTER].nack is None

    await client.subscribe(ENDPOINT, ["a"])
    await client.ack(await client.recv())
    await client.request(ENDPOINT, ["b"], nonce="old")  # stale, but subscribes b
    more = await client.recv()
    assert more.type_url == ENDPOINT and names(more) == {"b"}


async def test_stream_without_node_id_is_rejected(connect: Connect) -> None:
    client = await connect("")
    await client.subscribe(CLUSTER)
    assert await client.status_code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_both_protocols_serve_one_node(
    cache: SnapshotCache, connect: Connect, ads_address: str
) -> None:
    """A state-of-the-world and a delta stream of one node (e.g. during a switch) get the
    same snapshot and report into one status."""
    from tests.controlplane.xds.ads_client import AdsClient, unpack

    cache.set_resources(NODE, _base(clusters=[r.cluster("a"), r.cluster("b")]))
    delta = await connect(NODE)
    await delta.subscribe(CLUSTER)
    async with grpc.aio.insecure_channel(ads_address) as channel:
        sotw = AdsClient(channel, NODE)
        await sotw.request(CLUSTER)
        full = await sotw.recv()
        incremental = await delta.recv()
        assert set(unpack(full)) == names(incremental) == {"a", "b"}
        assert full.version_info == incremental.system_version_info
        await eventually(lambda: cache.node_status(NODE).streams == 2, "two streams")
        await sotw.close()
