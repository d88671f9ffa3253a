"""How many refusals of callers without a valid credential the audit log records one by one.

Anyone who reaches the API port can be refused, as fast as it can send: recording each of
those calls would let a caller with no credential at all write thousands of rows a second. So
each peer host has a token bucket: a burst of refusals is recorded one by one, then one per
`refill_s`; the calls past that are counted, and once per `summary_interval_s` one summarizing
event says how many more were refused from that peer. The store keeps these refusals under a
bound of their own besides (store/audit.py), so they never push a real change out of the log.

The table of peers is bounded: at `max_peers`, a peer with nothing pending is forgotten to make
room (least recently seen first), else the newcomer counts under OTHER_PEERS (one more slot).
IPv6 peers count per /64 (one host's share of addresses). Pure but for the state it keeps: the
caller passes the time.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass

# The peer that every newcomer counts as while the table is full of peers with refusals pending.
OTHER_PEERS = "other peers"


@dataclass(frozen=True)
class RefusalLimits:
    burst: int = 20  # refusals recorded one by one at once
    refill_s: float = 6.0  # then one more every this many seconds
    summary_interval_s: float = 60.0  # at most one summary per peer this often
    max_peers: int = 1024


@dataclass(frozen=True)
class RefusalSummary:
    """`count` refusals of `peer`, from `since` to `until`, not recorded one by one."""

    peer: str
    count: int
    since: float
    until: float

    def describe(self) -> str:
        calls = "call" if self.count == 1 else "calls"
        return (
            f"{self.count} more unauthenticated {calls} refused from {self.peer} "
            "(past the rate at which they are recorded one by one)"
        )


@dataclass
class _Peer:
    tokens: float
    refilled_at: float
    pending: int = 0
    pending_since: float = 0.0
    last_pending_at: float = 0.0


class UnauthenticatedRefusals:
    """A token bucket per peer host; see the module's docstring."""

    def __init__(self, limits: RefusalLimits = RefusalLimits()) -> None:
        self.limits = limits
        self._peers: OrderedDict[str, _Peer] = OrderedDict()

    def refused(self, peer: str, now: float) -> tuple[bool, RefusalSummary | None]:
        """One refusal of `peer` at `now`: whether to record it one by one, and the summary of
        its earlier unrecorded refusals when one is due."""
        state = self._peer(peer, now)
        self._refill(state, now)
        if state.tokens >= 1.0:
            state.tokens -= 1.0
            return True, self._take_due(peer, state, now)
        if state.pending == 0:
            state.pending_since = now
        state.pending += 1
        state.last_pending_at = now
        return False, self._take_due(peer, state, now)

    def due(self, now: float) -> list[RefusalSummary]:
        """The summaries due at `now` (a peer's first pending refusal is `summary_interval_s`
        old); called periodically, so a flood that stopped is summarized too."""
        return [
            summary
            for peer, state in list(self._peers.items())
            if (summary := self._take_due(peer, state, now)) is not None
        ]

    def flush(self) -> list[RefusalSummary]:
        """Every pending summary, due or not (at shutdown)."""
        out = []
        for peer, state in self._peers.items():
            if state.pending:
                out.append(self._summary(peer, state))
        return out

    def _take_due(self, peer: str, state: _Peer, now: float) -> RefusalSummary | None:
        if not state.pending or now - state.pending_since < self.limits.summary_interval_s:
            return None
        return self._summary(peer, state)

    def _summary(self, peer: str, state: _Peer) -> RefusalSummary:
        summary = RefusalSummary(peer, state.pending, state.pending_since, state.last_pending_at)
        state.pending = 0
        return summary

    def _refill(self, state: _Peer, now: float) -> None:
        elapsed = max(0.0, now - state.refilled_at)
        burst = float(self.limits.burst)
        state.tokens = min(burst, state.tokens + elapsed / self.limits.refill_s)
        state.refilled_at = now

    def _peer(self, peer: str, now: float) -> _Peer:
        if peer not in self._peers and self._full():
            idle = next(
                (p for p, s in self._peers.items() if not s.pending and p != OTHER_PEERS), None
            )
            if idle is None:
                peer = OTHER_PEERS  # a slot beside the max_peers others
            else:
                del self._peers[idle]
        state = self._peers.get(peer)
        if state is None:
            state = self._peers[peer] = _Peer(float(self.limits.burst), now)
        self._peers.move_to_end(peer)
        return state

    def _full(self) -> bool:
        return len(self._peers) - (OTHER_PEERS in self._peers) >= self.limits.max_peers


def peer_host(peer: str) -> str:
    """The host of a gRPC peer string (`ipv4:10.0.0.1:5000` -> `10.0.0.1`; IPv6 per /64:
    `ipv6:[2001:db8::5]:5000` -> `2001:db8::/64`; a unix socket -> `unix`)."""
    scheme, _, rest = peer.partition(":")
    if scheme == "ipv4":
        return rest.rpartition(":")[0] or rest
    if scheme == "ipv6":
        host = rest.rpartition("]")[0].lstrip("[") if rest.startswith("[") else rest
        host = host.split("%", 1)[0]
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            return host[:64]
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if address.is_loopback:
            return str(address)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    if scheme.startswith("unix"):
        return "unix"
    return peer[:64] or "unknown"
