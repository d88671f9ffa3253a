"""What one node's Envoy has been sent, has accepted and has rejected, per resource type.

Read by the control plane to report config status per region (`SnapshotCache.node_status`).
A node with several ADS streams (e.g. two Envoy replicas with the same node id) reports the
latest event of any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Nack:
    """Envoy rejected `version` of a type; `message` is Envoy's error_detail.message.

    A SotW NACK covers the whole update and rarely names the resource at fault, so the cache
    also says what the update was: `snapshot_version` (the node's snapshot version of the type
    it was built from; a CDS that still carries stale clusters has its own `version`) and
    `changed` (the names new or different from what that stream's Envoy had ACKed). Whoever
    owns the names can attribute the rejection.
    """

    version: str
    message: str
    at: float  # time.time() when the NACK arrived
    snapshot_version: str = ""
    changed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TypeStatus:
    """Status of one type URL for one node.

    `snapshot_version` is the version of the node's current snapshot (None without one). The
    sent/acked versions can differ from it while a push is in flight, and CDS can briefly carry an
    intermediate version (new clusters plus ones being removed, see `stream.py`). `nack` is the
    last rejection; it is cleared when a later version is ACKed. `answers` keeps Envoy's
    answer to each recent snapshot version (None: ACKed), so an answer to a config that was
    replaced before it arrived is still known (snapshots can change faster than Envoy answers).
    """

    snapshot_version: str | None = None
    sent_version: str | None = None
    acked_version: str | None = None
    nack: Nack | None = None
    last_ack_at: float | None = None
    answers: Mapping[str, Nack | None] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def in_sync(self) -> bool:
        """Envoy accepted the node's current snapshot version of this type."""
        return self.snapshot_version is not None and self.acked_version == self.snapshot_version


@dataclass(frozen=True)
class NodeStatus:
    """Status of one node: whether an ADS stream is open, and per type URL what happened."""

    node_id: str
    connected: bool = False
    streams: int = 0
    types: Mapping[str, TypeStatus] = field(default_factory=lambda: MappingProxyType({}))
