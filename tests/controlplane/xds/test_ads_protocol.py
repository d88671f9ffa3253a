"""ADS protocol tests: the real AdsServer on a loopback grpc.aio server, a raw gRPC client.

"Nothing was sent" is proven without timing: the stream handles requests strictly in order, so
after a probe request (the initial request of another type), the next response must be the
probe's answer; anything the server had wrongly sent before would arrive first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import pytest
from google.protobuf.message import Message

from controlplane.xds import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, SnapshotCache
from tests.controlplane.xds import resources as r
from tests.controlplane.xds.ads_client import AdsClient, eventually, unpack

pytestmark = pytest.mark.timeout(60)

Connect = Callable[[str], Awaitable[AdsClient]]
NODE = "eu-west"


def _base(**over: list[Message]) -> r.Resources:
    parts = {
        "clusters": [r.cluster("a")],
        "assignments": [r.load_assignment("a")],
        "listeners": [r.listener("l", 10000, "routes")],
        "routes": [r.route_config("routes", "a")],
    }
    parts.update(over)
    return r.resources(**parts)


def _version(cache: SnapshotCache, type_url: str, node: str = NODE) -> str:
    version = cache.node_status(node).types[type_url].snapshot_version
    assert version is not None
    return version


async def _connected(cache: SnapshotCache, node: str = NODE) -> None:
    await eventually(lambda: cache.node_status(node).connected, f"{node} connected")


async def _acked(cache: SnapshotCache, type_url: str, version: str, node: str = NODE) -> None:
    def done() -> bool:
        return cache.node_status(node).types[type_url].acked_version == version

    await eventually(done, f"{type_url} ACK of {version}")


async def _probe(client: AdsClient) -> None:
    """Ask for LDS for the first time; the next response must be exactly that answer."""
    await client.request(LISTENER)
    response = await client.recv()
    assert response.type_url == LISTENER, f"unexpected {response.type_url} before the probe"
    await client.ack(response)


async def test_silent_without_snapshot_then_full_snapshot(
    cache: SnapshotCache, connect: Connect
) -> None:
    client = await connect(NODE)
    await client.request(CLUSTER, version="1.99")  # like an Envoy that ran with an old server
    await _connected(cache)
    # The request is handled in the same step that registers the stream: nothing was sent.
    assert CLUSTER not in cache.node_status(NODE).types or (
        cache.node_status(NODE).types[CLUSTER].sent_version is None
    )

    cache.set_resources(NODE, _base(clusters=[r.cluster("a"), r.cluster("b")]))
    response = await client.recv()
    assert response.type_url == CLUSTER
    assert response.version_info == _version(cache, CLUSTER)
    assert set(unpack(response)) == {"a", "b"}
    assert response.nonce


async def test_ack_is_recorded(cache: SnapshotCache, connect: Connect) -> None:
    changes: list[str] = []
    cache.add_listener(changes.append)
    cache.set_resources(NODE, _base())
    client = await connect(NODE)
    await client.request(CLUSTER)
    response = await client.recv()
    await client.ack(response)
    await _acked(cache, CLUSTER, response.version_info)

    status = cache.node_status(NODE).types[CLUSTER]
    assert status.sent_version == status.acked_version == status.snapshot_version
    assert status.in_sync and status.nack is None and status.last_ack_at is not None
    assert set(cache.acked_resources(NODE, CLUSTER)) == {"a"}
    assert changes.count(NODE) >= 2  # connect + ACK

    await client.close()
    await eventually(lambda: not cache.node_status(NODE).connected, "disconnected")


async def test_nack_recorded_and_rejected_version_not_resent(
    cache: SnapshotCache, connect: Connect
) -> None:
    cache.set_resources(NODE, _base())
    client = await connect(NODE)
    await client.request(CLUSTER)
    good = await client.recv()
    await client.ack(good)

    cache.set_resources(NODE, _base(clusters=[r.cluster("a", 2000)]))
    bad = await client.recv()
    assert bad.version_info != good.version_info
    await client.nack(bad, "bad cluster a: connect_timeout")

    def nacked() -> bool:
        nack = cache.node_status(NODE).types[CLUSTER].nack
        return nack is not None and nack.version == bad.version_info

    await eventually(nacked, "NACK recorded")
    status = cache.node_status(NODE).types[CLUSTER]
    assert status.nack is not None and status.nack.message == "bad cluster a: connect_timeout"
    assert status.acked_version == good.version_info
    assert unpack_timeout(cache.acked_resources(NODE, CLUSTER)["a"]) == 1000

    # Same content again: same version, nothing re-sent (the probe answer comes first).
    cache.set_resources(NODE, _base(clusters=[r.cluster("a", 2000)]))
    await _probe(client)

    # Changed content: sent, and its ACK clears the NACK.
    cache.set_resources(NODE, _base(clusters=[r.cluster("a", 3000)]))
    fixed = await client.recv()
    assert fixed.type_url == CLUSTER
    assert fixed.version_info not in (good.version_info, bad.version_info)
    await client.ack(fixed)
    await _acked(cache, CLUSTER, fixed.version_info)
    assert cache.node_status(NODE).types[CLUSTER].nack is None


async def test_nack_says_what_the_rejected_update_held(
    cache: SnapshotCache, connect: Connect
) -> None:
    """Envoy's text rarely names the culprit: the NACK says which names changed since the
    stream's last ACK, and the snapshot version it was built from; the answer to each
    snapshot version is kept (the ACKed one too), so a config replaced before its answer
    arrived still gets one."""
    cache.set_resources(NODE, _base(clusters=[r.cluster("a"), r.cluster("b")]))
    client = await connect(NODE)
    await client.request(CLUSTER)
    first = await client.recv()
    await client.ack(first)

    cache.set_resources(
        NODE, _base(clusters=[r.cluster("a"), r.cluster("b", 2000), r.cluster("c")])
    )
    bad = await client.recv()
    await client.nack(bad, "Invalid duration")
    await eventually(lambda: cache.node_status(NODE).types[CLUSTER].nack is not None, "NACK")
    nack = cache.node_status(NODE).types[CLUSTER].nack
    assert nack is not None
    assert nack.changed == {"b", "c"}
    assert nack.version == bad.version_info == nack.snapshot_version == _version(cache, CLUSTER)
    answers = cache.node_status(NODE).types[CLUSTER].answers
    assert dict(answers) == {first.version_info: None, bad.version_info: nack}


async def test_nack_of_a_cds_with_stale_clusters_names_its_snapshot_version(
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

    cache.set_resources(
        NODE,
        _base(
            clusters=[r.cluster("a"), r.cluster("c")],
            assignments=[r.load_assignment("a"), r.load_assignment("c")],
            routes=[r.route_config("routes", "c")],
        ),
    )
    union = await client.recv()
    assert union.type_url == CLUSTER and set(unpack(union)) == {"a", "b", "c"}
    await client.nack(union, "bad cluster c")
    await eventually(lambda: cache.node_status(NODE).types[CLUSTER].nack is not None, "NACK")
    nack = cache.node_status(NODE).types[CLUSTER].nack
    assert nack is not None and nack.version == union.version_info
    assert nack.snapshot_version == _version(cache, CLUSTER) != union.version_info
    assert nack.changed == {"c"}


def unpack_timeout(cluster: object) -> int:
    timeout = cluster.connect_timeout  # type: ignore[attr-defined]
    return int(timeout.seconds * 1000 + timeout.nanos // 1_000_000)


async def test_stale_nonce_is_ignored(cache: SnapshotCache, connect: Connect) -> None:
    cache.set_resources(NODE, _base())
    client = await connect(NODE)
    await client.request(CLUSTER)
    first = await client.recv()
    await client.ack(first)
    await _acked(cache, CLUSTER, first.version_info)

    cache.set_resources(NODE, _base(clusters=[r.cluster("a"), r.cluster("b")]))
    second = await client.recv()
    # Requests with an old or unknown nonce, one of them a "NACK": all ignored.
    await client.request(CLUSTER, nonce=first.nonce, error="stale rejection")
    await client.request(CLUSTER, nonce="no-such-nonce", error="made-up rejection")
    await client.request(CLUSTER, nonce=first.nonce)
    await client.ack(second)
    await _acked(cache, CLUSTER, second.version_info)
    assert cache.node_status(NODE).types[CLUSTER].nack is None
    await _probe(client)  # and none of them got a response


async def test_cds_and_lds_always_carry_the_full_set(
    cache: SnapshotCache, connect: Connect
) -> None:
    two_listeners = [r.listener("l", 10000, "routes"), r.listener("l2", 10001, "routes")]
    cache.set_resources(
        NODE, _base(clusters=[r.cluster("a"), r.cluster("b")], listeners=two_listeners)
    )
    client = await connect(NODE)
    await client.request(CLUSTER)
    cds = await client.recv()
    await client.ack(cds)
    await client.request(LISTENER)
    lds = await client.recv()
    await client.ack(lds)
    assert set(unpack(cds)) == {"a", "b"} and set(unpack(lds)) == {"l", "l2"}

    cache.set_resources(NODE, _base(clusters=[r.cluster("a"), r.cluster("b")]))
    lds2 = await client.recv()
    assert lds2.type_url == LISTENER and set(unpack(lds2)) == {"l"}
    await client.ack(lds2)

    # Listeners and routes are settled, so dropping cluster b needs no intermediate step.
    cache.set_resources(NODE, _base())
    cds2 = await client.recv()
    assert cds2.type_url == CLUSTER and set(unpack(cds2)) == {"a"}
    assert cds2.version_info == _version(cache, CLUSTER)


async def test_eds_rerequest_after_cds_is_answered_with_unchanged_version(
    cache: SnapshotCache, connect: Connect
) -> None:
    assignments = [r.load_assignment("a"), r.load_assignment("b", [9001])]
    cache.set_resources(NODE, _base(assignments=assignments))
    client = await connect(NODE)
    await client.request(CLUSTER)
    cds = await client.recv()
    await client.ack(cds)
    await client.request(ENDPOINT, ["a"])
    eds = await client.recv()
    assert set(unpack(eds)) == {"a"}
    await client.ack(eds, ["a"])

    # New cluster b whose endpoints already existed: the EDS version does not change.
    cache.set_resources(
        NODE, _base(clusters=[r.cluster("a"), r.cluster("b")], assignments=assignments)
    )
    assert _version(cache, ENDPOINT) == eds.version_info
    cds2 = await client.recv()
    assert cds2.type_url == CLUSTER
    await client.ack(cds2)
    await client.request(ENDPOINT, ["a", "b"])  # Envoy's re-request: same version and nonce
    eds2 = await client.recv()
    assert eds2.type_url == ENDPOINT and eds2.version_info == eds.version_info
    assert set(unpack(eds2)) == {"a", "b"}
    await client.ack(eds2, ["a", "b"])

    # An updated (re-created) cluster re-requests the same names: answered once to warm it.
    cache.set_resources(
        NODE, _base(clusters=[r.cluster("a", 2000), r.cluster("b")], assignments=assignments)
    )
    cds3 = await client.recv()
    assert cds3.type_url == CLUSTER
    await client.ack(cds3)
    await client.request(ENDPOINT, ["a", "b"])
    eds3 = await client.recv()
    assert eds3.type_url == ENDPOINT and eds3.version_info == eds.version_info
    await client.ack(eds3, ["a", "b"])
    # The same request again, with no CDS push in between, is a plain ACK: no answer.
    await client.request(ENDPOINT, ["a", "b"])
    await _probe(client)


async def test_names_requested_before_they_exist_are_sent_when_they_appear(
    cache: SnapshotCache, connect: Connect
) -> None:
    client = await connect(NODE)
    await client.request(ROUTE, ["routes", "later"])  # before any snapshot
    await _connected(cache)
    cache.set_resources(NODE, _base())
    rds = await client.recv()
    assert rds.type_url == ROUTE and set(unpack(rds)) == {"routes"}
    await client.ack(rds, ["routes", "later"])

    cache.set_resources(
        NODE, _base(routes=[r.route_config("routes", "a"), r.route_config("later", "a")])
    )
    rds2 = await client.recv()
    assert set(unpack(rds2)) == {"routes", "later"}
    assert rds2.version_info != rds.version_info


async def test_push_order_is_cds_eds_lds_rds(cache: SnapshotCache, connect: Connect) -> None:
    cache.set_resources(NODE, _base())
    client = await connect(NODE)
    subscriptions = {CLUSTER: [], ENDPOINT: ["a"], LISTENER: [], ROUTE: ["routes"]}
    for type_url, names in subscriptions.items():
        await client.request(type_url, names)
        await client.ack(await client.recv(), names)

    # Every type changes at once: pushed in the same order again.
    cache.set_resources(
        NODE,
        _base(
            clusters=[r.cluster("a"), r.cluster("c")],
            assignments=[r.load_assignment("a", [9002]), r.load_assignment("c")],
            listeners=[r.listener("l", 10000, "routes"), r.listener("l2", 10001, "routes")],
            routes=[r.route_config("routes", "c")],
        ),
    )
    second = [await client.recv() for _ in range(4)]
    assert [x.type_url for x in second] == [CLUSTER, ENDPOINT, LISTENER, ROUTE]


async def _subscribe_all(client: AdsClient, endpoint_names: list[str]) -> None:
    subscriptions = {CLUSTER: [], ENDPOINT: endpoint_names, LISTENER: [], ROUTE: ["routes"]}
    for type_url, names in subscriptions.items():
        await client.request(type_url, names)
        await client.ack(await client.recv(), names)


async def test_cluster_removal_is_two_phase(cache: SnapshotCache, connect: Connect) -> None:
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
    old_cds = _version(cache, CLUSTER)

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
    union = await client.recv()
    assert union.type_url == CLUSTER and set(unpack(union)) == {"a", "b", "c"}
    assert union.version_info not in (old_cds, new_cds)
    eds = await client.recv()
    assert eds.type_url == ENDPOINT and set(unpack(eds)) == {"a"}  # subscribed: a, b
    rds = await client.recv()
    assert rds.type_url == ROUTE  # LDS did not change, so it is not sent
    assert unpack(rds)["routes"].virtual_hosts[0].routes[0].route.cluster == "c"

    await client.ack(union)
    await client.ack(eds, ["a", "b", "c"])  # Envoy now wants endpoints of c as well
    eds2 = await client.recv()
    assert eds2.type_url == ENDPOINT and set(unpack(eds2)) == {"a", "c"}
    await client.ack(eds2, ["a", "b", "c"])
    await _acked(cache, ENDPOINT, eds2.version_info)
    # Routes not ACKed yet: the stale cluster is still served.
    assert cache.node_status(NODE).types[CLUSTER].sent_version == union.version_info

    await client.ack(rds, ["routes"])
    final = await client.recv()
    assert final.type_url == CLUSTER and set(unpack(final)) == {"a", "c"}
    assert final.version_info == new_cds
    await client.ack(final)
    await _acked(cache, CLUSTER, new_cds)
    assert cache.node_status(NODE).types[CLUSTER].in_sync

    # Envoy drops its EDS interest in b: answered (name set changed), same version.
    await client.request(ENDPOINT, ["a", "c"])
    eds3 = await client.recv()
    assert eds3.type_url == ENDPOINT and eds3.version_info == eds.version_info


async def test_cluster_removal_waits_for_routes_even_without_new_clusters(
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
    old_cds = _version(cache, CLUSTER)

    # The route moves from b to a and b goes away: Envoy's clusters (a, b) are already the
    # intermediate set, so CDS waits and the routes go first.
    cache.set_resources(NODE, _base())
    eds = await client.recv()
    assert eds.type_url == ENDPOINT
    rds = await client.recv()
    assert rds.type_url == ROUTE
    await client.ack(eds, ["a", "b"])
    await _acked(cache, ENDPOINT, eds.version_info)
    assert cache.node_status(NODE).types[CLUSTER].sent_version == old_cds

    await client.ack(rds, ["routes"])
    final = await client.recv()
    assert final.type_url == CLUSTER and set(unpack(final)) == {"a"}
    assert final.version_info == _version(cache, CLUSTER) != old_cds


async def test_unacked_cds_holds_routes_but_not_endpoints(
    cache: SnapshotCache, connect: Connect
) -> None:
    cache.set_resources(NODE, _base())
    client = await connect(NODE)
    await _subscribe_all(client, ["a"])
    await _acked(cache, ROUTE, _version(cache, ROUTE))

    two = {"clusters": [r.cluster("a"), r.cluster("b")]}
    cache.set_resources(
        NODE, _base(**two, assignments=[r.load_assignment("a"), r.load_assignment("b")])
    )
    cds = await client.recv()
    assert cds.type_url == CLUSTER
    eds = await client.recv()
    assert eds.type_url == ENDPOINT
    # Like Envoy, hold the CDS ACK while cluster b warms; b's endpoints must still come.
    await client.ack(eds, ["a", "b"])
    eds2 = await client.recv()
    assert eds2.type_url == ENDPOINT and set(unpack(eds2)) == {"a", "b"}
    await client.ack(eds2, ["a", "b"])

    # Clusters and routes change while CDS is unacknowledged: endpoints go, routes wait.
    cache.set_resources(
        NODE,
        _base(
            clusters=[r.cluster("a"), r.cluster("b", 2000)],
            assignments=[r.load_assignment("a"), r.load_assignment("b", [9005])],
            routes=[r.route_config("routes", "b")],
        ),
    )
    eds3 = await client.recv()
    assert eds3.type_url == ENDPOINT
    await client.ack(eds3, ["a", "b"])
    await _acked(cache, ENDPOINT, eds3.version_info)
    await client.ack(cds)  # b is warm
    cds2 = await client.recv()
    assert cds2.type_url == CLUSTER  # the route table was not sent before the new clusters
    rds = await client.recv()
    assert rds.type_url == ROUTE


async def test_several_streams_of_one_node(cache: SnapshotCache, connect: Connect) -> None:
    cache.set_resources(NODE, _base())
    one, two = await connect(NODE), await connect(NODE)
    for client in (one, two):
        await client.request(CLUSTER)
        response = await client.recv()
        assert response.version_info == _version(cache, CLUSTER)
        await client.ack(response)
    await eventually(lambda: cache.node_status(NODE).streams == 2, "two streams")

    await one.close()
    await eventually(lambda: cache.node_status(NODE).streams == 1, "one stream left")
    assert cache.node_status(NODE).connected
    cache.set_resources(NODE, _base(clusters=[r.cluster("a"), r.cluster("z")]))
    assert set(unpack(await two.recv())) == {"a", "z"}
    await two.close()
    await eventually(lambda: not cache.node_status(NODE).connected, "no stream left")


async def test_stream_without_node_id_is_rejected(connect: Connect) -> None:
    client = await connect("")
    await client.request(CLUSTER)
    assert await client.status_code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_other_nodes_are_not_woken(cache: SnapshotCache, connect: Connect) -> None:
    cache.set_resources("us-east", _base())
    client = await connect(NODE)
    await client.request(CLUSTER)
    await _connected(cache)
    cache.set_resources("us-east", _base(clusters=[r.cluster("q")]))
    cache.set_resources(NODE, _base(clusters=[r.cluster("mine")]))
    response = await client.recv()
    assert set(unpack(response)) == {"mine"}


# --- secrets (SDS over the same stream) ----------------------------------------------------


def _secrets(serial: str = "1") -> list[Message]:
    return [
        r.certificate_secret("identity", f"chain {serial}", f"key {serial}"),
        r.ca_secret("mesh-ca", "ca"),
    ]


async def test_secrets_requested_before_they_exist_are_sent_when_they_appear(
    cache: SnapshotCache, connect: Connect
) -> None:
    client = await connect(NODE)
    await client.request(SECRET, ["identity", "mesh-ca"])  # before any snapshot
    await _connected(cache)
    cache.set_resources(NODE, _base())  # a config without TLS: no SDS in it
    await _probe(client)  # the secret request got no answer
    assert SECRET not in cache.node_status(NODE).types or (
        cache.node_status(NODE).types[SECRET].sent_version is None
    )

    cache.set_resources(NODE, _base(secrets=_secrets()[1:]))
    first = await client.recv()
    assert first.type_url == SECRET and set(unpack(first)) == {"mesh-ca"}
    await client.ack(first, ["identity", "mesh-ca"])

    cache.set_resources(NODE, _base(secrets=_secrets()))
    both = await client.recv()
    assert set(unpack(both)) == {"identity", "mesh-ca"}
    assert both.version_info != first.version_info


async def test_a_rotated_secret_is_pushed_before_everything_else(
    cache: SnapshotCache, connect: Connect
) -> None:
    cache.set_resources(NODE, _base(secrets=_secrets("1")))
    client = await connect(NODE)
    subscriptions = {
        SECRET: ["identity", "mesh-ca"],
        CLUSTER: [],
        ENDPOINT: ["a"],
        LISTENER: [],
        ROUTE: ["routes"],
    }
    for type_url, names in subscriptions.items():
        await client.request(type_url, names)
        await client.ack(await client.recv(), names)
        await _acked(cache, type_url, _version(cache, type_url))

    # Every type changes at once: the secret goes first, then the usual order.
    cache.set_resources(
        NODE,
        _base(
            clusters=[r.cluster("a"), r.cluster("c")],
            assignments=[r.load_assignment("a", [9002]), r.load_assignment("c")],
            listeners=[r.listener("l", 10000, "routes"), r.listener("l2", 10001, "routes")],
            routes=[r.route_config("routes", "c")],
            secrets=_secrets("2"),
        ),
    )
    pushed = [await client.recv() for _ in range(5)]
    assert [x.type_url for x in pushed] == [SECRET, CLUSTER, ENDPOINT, LISTENER, ROUTE]
    rotated = unpack(pushed[0])["identity"]
    assert rotated.tls_certificate.certificate_chain.inline_string == "chain 2"  # type: ignore[attr-defined]


async def test_secret_nack_is_recorded_and_not_resent(
    cache: SnapshotCache, connect: Connect
) -> None:
    cache.set_resources(NODE, _base(secrets=_secrets("1")))
    client = await connect(NODE)
    await client.request(SECRET, ["identity", "mesh-ca"])
    good = await client.recv()
    await client.ack(good, ["identity", "mesh-ca"])

    cache.set_resources(NODE, _base(secrets=_secrets("broken")))
    bad = await client.recv()
    await client.nack(bad, "Failed to load certificate chain", ["identity", "mesh-ca"])

    def nacked() -> bool:
        nack = cache.node_status(NODE).types[SECRET].nack
        return nack is not None and nack.version == bad.version_info

    await eventually(nacked, "secret NACK recorded")
    status = cache.node_status(NODE).types[SECRET]
    assert status.acked_version == good.version_info and not status.in_sync
    nack = status.nack
    assert nack is not None and nack.changed == {"identity"}
    await client.request(SECRET, ["identity", "mesh-ca"])  # Envoy asks again: no resend
    await _probe(client)

    cache.set_resources(NODE, _base(secrets=_secrets("3")))
    fixed = await client.recv()
    assert fixed.type_url == SECRET
    assert fixed.version_info not in (good.version_info, bad.version_info)


async def test_secret_rerequest_after_cds_is_answered(
    cache: SnapshotCache, connect: Connect
) -> None:
    """Re-created clusters may subscribe to their secrets again with the same names: answered,
    like EDS, so they finish warming."""
    cache.set_resources(NODE, _base(secrets=_secrets()))
    client = await connect(NODE)
    await client.request(CLUSTER)
    await client.ack(await client.recv())
    await client.request(SECRET, ["identity", "mesh-ca"])
    sds = await client.recv()
    await client.ack(sds, ["identity", "mesh-ca"])

    cache.set_resources(NODE, _base(clusters=[r.cluster("a", 2000)], secrets=_secrets()))
    cds = await client.recv()
    assert cds.type_url == CLUSTER
    await client.ack(cds)
    await client.request(SECRET, ["identity", "mesh-ca"])
    again = await client.recv()
    assert again.type_url == SECRET and again.version_info == sds.version_info
