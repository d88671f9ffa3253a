"""Per-node snapshot cache: the hand-over point between translation and the ADS server.

The control plane calls `set_resources(node_id, {type_url: {name: message}})` with the complete
desired state of one node (node id = region name). The cache gives every type a version that
changes only when that type's content changes (digest of the deterministic serialization) and
looks like f"{epoch}.{counter}": `epoch` is bumped by the store at every control-plane start, so
a version is never reused across restarts and Envoy never mistakes new config for old.

The cache also keeps what the ADS streams report back (sent, ACKed, NACKed per type, and
Envoy's answer to each snapshot version) so the control plane can tell which configs each
region's Envoy accepted (`node_status`; status itself reads the typed IR behind them, see
controlplane/confirmed.py; `acked_resources` is the protocol's own record, for its tests), and
calls listeners on the event loop whenever an ACK, NACK, connect or disconnect changes a node's
status.

Not thread-safe: call it from the event loop that runs the gRPC server.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from google.protobuf.message import Message

from controlplane.xds.resource_types import PUSH_ORDER
from controlplane.xds.snapshot import Snapshot, TypeSnapshot, WireForm, build_type_snapshot
from controlplane.xds.status import Nack, NodeStatus, TypeStatus

log = logging.getLogger(__name__)

Listener = Callable[[str], None]
Waker = Callable[[], None]

_EMPTY: Mapping[str, Message] = MappingProxyType({})
_NOTHING: Mapping[str, Message | WireForm] = MappingProxyType({})
# Answers kept per type: enough for the snapshots built while one answer is on its way.
ANSWERS_KEPT = 64


@dataclass
class _TypeRecord:
    """What the node's streams reported for one type (latest event of any stream wins)."""

    sent_version: str | None = None
    acked_version: str | None = None
    acked: Mapping[str, Message] = field(default_factory=lambda: _EMPTY)
    nack: Nack | None = None
    last_ack_at: float | None = None
    # snapshot version -> Envoy's answer to a response built from it (None: ACKed), oldest first
    answers: OrderedDict[str, Nack | None] = field(default_factory=OrderedDict)

    def answer(self, snapshot_version: str, nack: Nack | None) -> None:
        if not snapshot_version:
            return
        self.answers.pop(snapshot_version, None)
        self.answers[snapshot_version] = nack
        while len(self.answers) > ANSWERS_KEPT:
            self.answers.popitem(last=False)


@dataclass
class _Node:
    snapshot: Snapshot | None = None
    streams: dict[int, Waker] = field(default_factory=dict)
    records: dict[str, _TypeRecord] = field(default_factory=dict)


class SnapshotCache:
    """Snapshots per node, versioned per type, plus what each node's Envoy reported back."""

    def __init__(self, epoch: int) -> None:
        self._epoch = epoch
        self._versions = itertools.count(1)
        self._nonces = itertools.count(1)
        self._stream_ids = itertools.count(1)
        self._nodes: dict[str, _Node] = {}
        self._listeners: list[Listener] = []

    @property
    def epoch(self) -> int:
        return self._epoch

    # ----- control-plane side -------------------------------------------------------------

    def set_resources(
        self, node_id: str, resources: Mapping[str, Mapping[str, Message | WireForm]]
    ) -> None:
        """Replace the node's desired state and wake its streams.

        `resources` maps type URL -> {resource name -> message}; the core types (CDS, EDS, ECDS,
        LDS, RDS) count as empty when absent, an optional type (SDS) is served only when given.
        Messages are serialized on the way in, and a message object handed in again under the
        same name is taken as unchanged (see snapshot.py): never mutate one after handing it
        in. A message whose type does not match its type URL raises ValueError (and leaves the
        old snapshot in place).
        """
        node = self._nodes.setdefault(node_id, _Node())
        old = node.snapshot.types if node.snapshot is not None else {}
        type_urls = list(PUSH_ORDER) + [t for t in resources if t not in PUSH_ORDER]
        types: dict[str, TypeSnapshot] = {}
        for type_url in type_urls:
            types[type_url] = build_type_snapshot(
                type_url, resources.get(type_url, _NOTHING), old.get(type_url), self.next_version
            )
        changed = node.snapshot is None or any(
            t not in old or old[t].version != s.version for t, s in types.items()
        )
        changed = changed or any(t not in types for t in old)
        node.snapshot = Snapshot(types=MappingProxyType(types))
        if changed:
            self._wake(node)

    def remove_node(self, node_id: str) -> None:
        """Forget the node's snapshot and status; its open streams stay open but get nothing."""
        node = self._nodes.get(node_id)
        if node is None:
            return
        if not node.streams:
            del self._nodes[node_id]
            return
        node.snapshot = None
        node.records.clear()

    def has_snapshot(self, node_id: str) -> bool:
        node = self._nodes.get(node_id)
        return node is not None and node.snapshot is not None

    def node_status(self, node_id: str) -> NodeStatus:
        node = self._nodes.get(node_id)
        if node is None:
            return NodeStatus(node_id=node_id)
        snap_types = node.snapshot.types if node.snapshot is not None else {}
        types: dict[str, TypeStatus] = {}
        for type_url in list(snap_types) + [t for t in node.records if t not in snap_types]:
            snap = snap_types.get(type_url)
            rec = node.records.get(type_url, _TypeRecord())
            types[type_url] = TypeStatus(
                snapshot_version=snap.version if snap is not None else None,
                sent_version=rec.sent_version,
                acked_version=rec.acked_version,
                nack=rec.nack,
                last_ack_at=rec.last_ack_at,
                answers=MappingProxyType(dict(rec.answers)),
            )
        return NodeStatus(
            node_id=node_id,
            connected=bool(node.streams),
            streams=len(node.streams),
            types=MappingProxyType(types),
        )

    def acked_resources(self, node_id: str, type_url: str) -> Mapping[str, Message]:
        """The content (name -> message) of the version Envoy ACKed last for this type."""
        node = self._nodes.get(node_id)
        if node is None or type_url not in node.records:
            return _EMPTY
        return node.records[type_url].acked

    def add_listener(self, callback: Listener) -> None:
        """Call `callback(node_id)` whenever an ACK, NACK, connect or disconnect happens.

        Runs synchronously inside the ADS stream's handling: keep it cheap (e.g. mark the node
        dirty and recompute status elsewhere). Exceptions are logged and swallowed.
        """
        self._listeners.append(callback)

    # ----- ADS-server side ----------------------------------------------------------------

    def next_version(self) -> str:
        """A version string never used before, in this process or an earlier epoch."""
        return f"{self._epoch}.{next(self._versions)}"

    def next_nonce(self) -> str:
        """A nonce never used before (one per DiscoveryResponse)."""
        return f"n{self._epoch}.{next(self._nonces)}"

    def snapshot(self, node_id: str) -> Snapshot | None:
        node = self._nodes.get(node_id)
        return node.snapshot if node is not None else None

    def connect(self, node_id: str, wake: Waker) -> int:
        """Register an open ADS stream of the node; `wake()` is called when its snapshot changes.

        Returns a stream id for `disconnect`.
        """
        stream_id = next(self._stream_ids)
        self._nodes.setdefault(node_id, _Node()).streams[stream_id] = wake
        self._notify(node_id)
        return stream_id

    def disconnect(self, node_id: str, stream_id: int) -> None:
        node = self._nodes.get(node_id)
        if node is None or node.streams.pop(stream_id, None) is None:
            return
        if node.snapshot is None and not node.streams:
            del self._nodes[node_id]
        self._notify(node_id)

    def record_sent(self, node_id: str, type_url: str, version: str) -> None:
        self._record(node_id, type_url).sent_version = version

    def record_ack(
        self,
        node_id: str,
        type_url: str,
        version: str,
        resources: Mapping[str, Message],
        *,
        snapshot_version: str = "",
    ) -> None:
        """Envoy accepted `version`, built from the node's `snapshot_version` of the type."""
        rec = self._record(node_id, type_url)
        rec.acked_version = version
        rec.acked = resources
        rec.nack = None
        rec.last_ack_at = time.time()
        rec.answer(snapshot_version, None)
        self._notify(node_id)

    def record_nack(
        self,
        node_id: str,
        type_url: str,
        version: str,
        message: str,
        *,
        snapshot_version: str = "",
        changed: frozenset[str] = frozenset(),
    ) -> None:
        """Envoy rejected `version`; see `Nack` for what the other facts are for."""
        rec = self._record(node_id, type_url)
        rec.nack = Nack(
            version=version,
            message=message,
            at=time.time(),
            snapshot_version=snapshot_version,
            changed=changed,
        )
        rec.answer(snapshot_version, rec.nack)
        self._notify(node_id)

    # ----- internals ----------------------------------------------------------------------

    def _record(self, node_id: str, type_url: str) -> _TypeRecord:
        node = self._nodes.setdefault(node_id, _Node())
        return node.records.setdefault(type_url, _TypeRecord())

    def _wake(self, node: _Node) -> None:
        for wake in list(node.streams.values()):
            wake()

    def _notify(self, node_id: str) -> None:
        for callback in list(self._listeners):
            try:
                callback(node_id)
            except Exception:
                log.exception("xds status listener failed for node %s", node_id)
