"""Protocol state of one state-of-the-world ADS stream: when to answer, and with what.

Pure logic, no I/O: `on_request` classifies each DiscoveryRequest, `plan` returns the responses to
write now (and records them as sent). `server.py` does the gRPC part. The rules, per type URL:

Requests (like Istio's ShouldRespond):
- First request of a type on the stream (or an empty response_nonce): subscribe and answer,
  if the node has a snapshot. Without one the stream stays silent, so an Envoy that reconnects to
  a freshly restarted control plane keeps its last config until the region is known again.
- response_nonce that is not the latest nonce we sent for that type: STALE. Ignored entirely
  (no ACK/NACK recorded, subscription unchanged, no response). A newer response is on its way
  and Envoy's answer to it will carry the current subscription.
- Latest nonce, response not yet answered, no error_detail: ACK of that response's version; we
  keep a reference to the content sent with it. With error_detail: NACK; the rejected version is
  never sent again. Only a new version (content change) or a changed subscription is sent. A
  NACK says which snapshot version the response was built from and which of its resources were
  new or changed since this stream's last ACK (Envoy's text rarely names the culprit).
- Latest nonce, response already answered: a subscription change (e.g. Envoy asks EDS for new
  clusters). Answered when the name set changed, even if the version did not, so clusters and
  listeners finish warming. After a CDS (LDS) push that was not followed by an EDS (RDS) push,
  the next such request is answered even with an unchanged name set: Envoy re-creates updated
  clusters and waits for their endpoints again.

Responses:
- CDS and LDS carry the full set of the node's resources of that type; EDS and RDS only the
  subscribed names that exist. Subscribed names that do not exist yet are remembered and sent
  once they appear (the type's version changes then).
- At most one unanswered response per type (as go-control-plane): a burst of snapshot changes
  collapses into the latest, and every ACK/NACK maps to exactly one known response.
- Push order SDS -> CDS -> EDS -> ECDS -> LDS -> RDS. If CDS or EDS has something new to send
  but still waits for Envoy's answer to the previous one, LDS and RDS wait too (a route must not
  arrive before its cluster). EDS is never held back by a pending CDS and RDS never by a pending
  LDS: Envoy holds its CDS ACK until new clusters are warm, which needs their endpoints (and may
  likewise wait for route tables before a listener is warm); holding the child would stall
  both. SDS is never held back either: clusters and listeners that name a secret warm only once
  it arrived, and a rotated secret (same name, new content) goes out ahead of anything else.
- Make-before-break removal: while Envoy may still hold listeners/routes that use a cluster the
  snapshot dropped, CDS carries the new clusters plus the dropped ones (under its own, new
  version; skipped when Envoy already holds exactly that set). Only when LDS and RDS of the
  current snapshot are sent and ACKed is the final CDS (the snapshot's version) sent, without
  the stale clusters. A NACKed LDS/RDS keeps the stale clusters until a later one is ACKed.
- EDS/RDS with an empty name list means "interested in nothing": no response.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.message import Message

from controlplane.xds.resource_types import (
    CHILD_TYPES,
    CLUSTER,
    ENDPOINT,
    EXTENSION_CONFIG,
    LISTENER,
    ROUTE,
    is_wildcard,
    push_rank,
)
from controlplane.xds.snapshot import Messages, Resource, Snapshot, digest_resources

DiscoveryRequest = Any  # discovery_pb2.DiscoveryRequest (generated code has no type stubs)
DiscoveryResponse = Any

_NO_RESOURCES: Mapping[str, Resource] = MappingProxyType({})
CLUSTER_TYPES = frozenset({CLUSTER, ENDPOINT})
# What must wait for clusters Envoy does not have yet (a filter config may name one too: the
# cluster a JWKS is fetched through).
ROUTING_TYPES = frozenset({EXTENSION_CONFIG, LISTENER, ROUTE})


class RequestKind(enum.Enum):
    INITIAL = "initial"
    ACK = "ack"
    NACK = "nack"
    RESUBSCRIBE = "resubscribe"
    STALE = "stale"


@dataclass(frozen=True)
class RequestVerdict:
    """What a request meant. For ACK/NACK: the version (ours) and content it refers to; for a
    NACK the names new or changed since the stream's last ACK of the type; for both the snapshot
    version it was built from."""

    kind: RequestKind
    type_url: str
    version: str | None = None
    resources: Mapping[str, Message] = field(default_factory=lambda: MappingProxyType({}))
    error: str = ""
    snapshot_version: str = ""
    changed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Sent:
    nonce: str
    version: str
    resources: Mapping[str, Resource]
    subscription: frozenset[str] | None  # None for wildcard types
    digest: bytes | None  # only kept for CDS (intermediate versions are content-addressed)
    snapshot_version: str = ""  # the snapshot's version of the type this was built from


@dataclass(frozen=True)
class _Desired:
    resources: Mapping[str, Resource]
    version: str | None  # None: intermediate CDS content not sent before; allocate on send
    subscription: frozenset[str] | None
    digest: bytes | None
    snapshot_version: str = ""


@dataclass
class _TypeState:
    names: frozenset[str] = frozenset()
    last: _Sent | None = None  # latest response sent on this stream
    # content of the last ACKed response
    acked: Mapping[str, Resource] = field(default_factory=lambda: _NO_RESOURCES)
    awaiting: bool = False  # `last` is neither ACKed nor NACKed yet
    nacked: bool = False  # `last` was NACKed
    force: bool = False  # answer even if nothing changed (initial request, re-warming)
    rewarm: bool = False  # parent type was pushed alone; answer the next re-request


class StreamState:
    """Per-stream, per-type xDS state machine (see module docstring for the rules)."""

    def __init__(self, new_version: Callable[[], str], new_nonce: Callable[[], str]) -> None:
        self._new_version = new_version
        self._new_nonce = new_nonce
        self._types: dict[str, _TypeState] = {}

    # ----- requests -----------------------------------------------------------------------

    def on_request(self, request: DiscoveryRequest) -> RequestVerdict:
        type_url: str = request.type_url
        names = frozenset(request.resource_names)
        ts = self._types.get(type_url)
        if ts is None or ts.last is None or not request.response_nonce:
            # New subscription, or Envoy (re)starting this type on a fresh stream.
            ts = self._types.setdefault(type_url, _TypeState())
            ts.names = names
            ts.awaiting = False
            ts.force = True
            return RequestVerdict(RequestKind.INITIAL, type_url)
        if request.response_nonce != ts.last.nonce:
            return RequestVerdict(RequestKind.STALE, type_url)
        ts.names = names
        if not ts.awaiting:
            if ts.rewarm and not ts.nacked:
                ts.force = True
            ts.rewarm = False
            return RequestVerdict(RequestKind.RESUBSCRIBE, type_url)
        ts.awaiting = False
        content = Messages(ts.last.resources)
        if request.HasField("error_detail"):
            ts.nacked = True
            changed = frozenset(
                name
                for name, resource in ts.last.resources.items()
                if name not in ts.acked or ts.acked[name].packed.value != resource.packed.value
            )
            return RequestVerdict(
                RequestKind.NACK,
                type_url,
                version=ts.last.version,
                resources=content,
                error=request.error_detail.message,
                snapshot_version=ts.last.snapshot_version,
                changed=changed,
            )
        ts.nacked = False
        ts.acked = ts.last.resources
        return RequestVerdict(
            RequestKind.ACK,
            type_url,
            version=ts.last.version,
            resources=content,
            snapshot_version=ts.last.snapshot_version,
        )

    # ----- responses ----------------------------------------------------------------------

    def plan(self, snapshot: Snapshot | None) -> list[DiscoveryResponse]:
        """Responses to write now, in push order; they are recorded as sent."""
        if snapshot is None:
            return []
        out: list[DiscoveryResponse] = []
        sent: set[str] = set()
        hold_routes = False
        for type_url in sorted(self._types, key=push_rank):
            if hold_routes and type_url in ROUTING_TYPES:
                continue
            ts = self._types[type_url]
            desired = self._desired(type_url, ts, snapshot)
            if desired is None or not self._needs_send(ts, desired):
                continue
            if ts.awaiting:
                # Clusters/endpoints Envoy has not got yet: listeners and routes must not
                # overtake them. EDS is never held back: Envoy delays its CDS ACK until new
                # clusters warmed, which needs their endpoints.
                hold_routes = hold_routes or type_url in CLUSTER_TYPES
                continue
            out.append(self._send(type_url, ts, desired))
            sent.add(type_url)
        for parent, children in CHILD_TYPES.items():
            for child in children:
                if parent in sent and child not in sent and child in self._types:
                    self._types[child].rewarm = True
        return out

    def _desired(self, type_url: str, ts: _TypeState, snapshot: Snapshot) -> _Desired | None:
        snap = snapshot.types.get(type_url)
        if snap is None:
            return None  # a type this node's snapshot does not serve
        if not is_wildcard(type_url):
            if not ts.names:
                return None  # subscribed to nothing
            picked = {n: snap.resources[n] for n in sorted(ts.names) if n in snap.resources}
            return _Desired(MappingProxyType(picked), snap.version, ts.names, None, snap.version)
        if type_url == CLUSTER:
            stale = {n: r for n, r in self._held_clusters().items() if n not in snap.resources}
            if stale and not self._routes_settled(snapshot):
                union = MappingProxyType({**stale, **snap.resources})
                digest = digest_resources(union)
                last = ts.last
                version = last.version if last is not None and last.digest == digest else None
                return _Desired(union, version, None, digest, snap.version)
        return _Desired(snap.resources, snap.version, None, snap.digest, snap.version)

    def _held_clusters(self) -> Mapping[str, Resource]:
        """Clusters Envoy has, or will have once it applies the response in flight."""
        ts = self._types.get(CLUSTER)
        if ts is None:
            return _NO_RESOURCES
        if ts.last is None or ts.nacked:
            return ts.acked
        return {**ts.acked, **ts.last.resources}

    def _routes_settled(self, snapshot: Snapshot) -> bool:
        """ECDS, LDS and RDS of the current snapshot are sent and ACKed (nothing can use old
        clusters).

        A listener that newly names an existing, unchanged route table is not waited for: a
        table that pointed at a dropped cluster must itself have changed, so RDS has work left.
        """
        for type_url in (EXTENSION_CONFIG, LISTENER, ROUTE):
            ts = self._types.get(type_url)
            if ts is None:
                continue
            if ts.awaiting or ts.nacked:
                return False
            desired = self._desired(type_url, ts, snapshot)
            if desired is not None and self._needs_send(ts, desired):
                return False
        return True

    @staticmethod
    def _needs_send(ts: _TypeState, desired: _Desired) -> bool:
        if ts.force or ts.last is None:
            return True
        if desired.version is None or desired.version != ts.last.version:
            return True
        return desired.subscription != ts.last.subscription

    def _send(self, type_url: str, ts: _TypeState, desired: _Desired) -> DiscoveryResponse:
        version = desired.version if desired.version is not None else self._new_version()
        nonce = self._new_nonce()
        ts.last = _Sent(
            nonce=nonce,
            version=version,
            resources=desired.resources,
            subscription=desired.subscription,
            digest=desired.digest,
            snapshot_version=desired.snapshot_version,
        )
        ts.awaiting = True
        ts.nacked = False
        ts.force = False
        ts.rewarm = False
        return discovery_pb2.DiscoveryResponse(
            version_info=version,
            type_url=type_url,
            nonce=nonce,
            resources=[r.packed for r in desired.resources.values()],
        )
