"""The rate at which unauthenticated refusals are recorded one by one, per peer host: a burst,
then one per refill; the rest summarized once per interval; a bounded table of peers."""

from __future__ import annotations

import pytest

from controlplane.api.refusal_limiter import (
    OTHER_PEERS,
    RefusalLimits,
    RefusalSummary,
    UnauthenticatedRefusals,
    peer_host,
)

LIMITS = RefusalLimits(burst=3, refill_s=10.0, summary_interval_s=60.0, max_peers=2)


def test_a_burst_is_recorded_then_the_rest_is_counted_for_a_summary() -> None:
    refusals = UnauthenticatedRefusals(LIMITS)
    verdicts = [refusals.refused("10.0.0.1", 100.0 + i * 0.01) for i in range(10)]
    assert [one for one, _ in verdicts] == [True] * 3 + [False] * 7
    assert all(summary is None for _, summary in verdicts)
    assert refusals.due(159.0) == []  # the first unrecorded one is not a minute old
    assert refusals.due(160.03) == [RefusalSummary("10.0.0.1", 7, 100.03, 100.09)]
    assert refusals.due(500.0) == []  # said once


def test_the_bucket_refills_one_per_refill_period() -> None:
    refusals = UnauthenticatedRefusals(LIMITS)
    for _ in range(3):
        assert refusals.refused("10.0.0.1", 0.0)[0]
    assert not refusals.refused("10.0.0.1", 9.9)[0]
    assert refusals.refused("10.0.0.1", 10.1)[0]
    assert not refusals.refused("10.0.0.1", 10.2)[0]
    # a quiet peer is back to its whole burst, never more
    assert [refusals.refused("10.0.0.1", 1000.0)[0] for _ in range(4)] == [True] * 3 + [False]


def test_the_call_after_the_interval_carries_the_summary() -> None:
    refusals = UnauthenticatedRefusals(RefusalLimits(burst=1, refill_s=1000.0))
    assert refusals.refused("p", 0.0) == (True, None)
    assert refusals.refused("p", 1.0) == (False, None)
    assert refusals.refused("p", 2.0) == (False, None)
    assert refusals.refused("p", 61.0) == (False, RefusalSummary("p", 3, 1.0, 61.0))
    assert refusals.refused("p", 62.0) == (False, None)
    assert refusals.flush() == [RefusalSummary("p", 1, 62.0, 62.0)]
    assert refusals.flush() == []


def test_peers_are_counted_apart() -> None:
    refusals = UnauthenticatedRefusals(LIMITS)
    for _ in range(3):
        refusals.refused("10.0.0.1", 0.0)
    assert refusals.refused("10.0.0.2", 0.0)[0]
    assert not refusals.refused("10.0.0.1", 0.0)[0]


def test_the_table_of_peers_is_bounded() -> None:
    """At max_peers a peer with nothing pending is forgotten; when every peer has refusals
    pending, newcomers share the OTHER_PEERS slot, and no count is lost."""
    refusals = UnauthenticatedRefusals(LIMITS)
    refusals.refused("a", 0.0)  # nothing pending: may be forgotten
    for _ in range(4):
        refusals.refused("b", 0.0)  # one pending
    assert refusals.refused("c", 0.0)[0]  # takes a's place
    for _ in range(3):
        refusals.refused("c", 0.0)  # c has one pending too
    for peer in ("d", "e", "f", "g"):
        for _ in range(2):
            refusals.refused(peer, 0.0)
    assert sorted(s.peer for s in refusals.flush()) == ["b", "c", OTHER_PEERS]
    assert {s.peer: s.count for s in refusals.due(0.0)} == {}


@pytest.mark.parametrize(
    ("peer", "host"),
    [
        ("ipv4:10.0.0.7:51234", "10.0.0.7"),
        ("ipv6:[::1]:51234", "::1"),
        ("ipv6:[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"),
        ("ipv6:[2001:db8:1:2:ffff::9]:443", "2001:db8:1:2::/64"),
        ("ipv6:[::ffff:10.0.0.7]:1", "10.0.0.7"),
        ("unix:/tmp/socket", "unix"),
        ("", "unknown"),
    ],
)
def test_peer_host(peer: str, host: str) -> None:
    assert peer_host(peer) == host


def test_a_summary_says_how_many_and_from_where() -> None:
    assert RefusalSummary("10.0.0.1", 995, 1.0, 2.0).describe() == (
        "995 more unauthenticated calls refused from 10.0.0.1 (past the rate at which they are "
        "recorded one by one)"
    )
