"""Protocol state of one incremental (delta) ADS stream: when to answer, and with what.

Pure logic, no I/O, the twin of stream.py (state of the world): `on_request` classifies each
DeltaDiscoveryRequest, `plan` returns the DeltaDiscoveryResponses to write now (recorded as
sent) and the answers Envoy gave without a round trip. The gRPC part is in server.py. The rules
are stream.py's, per resource; per type URL:

Resources and versions:
- Each resource's version is a digest of its content (`Resource.version`), the same across
  control-plane restarts. The stream keeps, per name, the version Envoy has or was sent
  (`offered`, in flight and rejected included) and the resources Envoy ACKed (`acked`). A
  response carries the subscribed resources whose version differs from `offered` and, for a
  wildcard subscription (CDS, LDS), the offered names the snapshot no longer has as
  `removed_resources`. Nothing else is resent. For named subscriptions (EDS, RDS, SDS, ECDS)
  absence means nothing, as in state of the world: Envoy keeps what a cluster or listener it
  still has names, until it unsubscribes.
- Subscriptions: the first request of a type with no names is a (legacy) wildcard
  subscription, as is `*`; otherwise the named resources. Unsubscribed names are forgotten;
  a name subscribed again is sent again (Envoy may have dropped its copy). Subscribed names
  that do not exist yet are remembered and sent once they appear.
- The first request of a type on a stream lists what Envoy already has
  (`initial_resource_versions`, after a reconnect): only what differs is sent (and, for a
  wildcard subscription, what is gone as `removed_resources`); what it has at the version we
  would send counts as ACKed. That first request is always answered, even with nothing in it,
  so an Envoy that waits for its first CDS or LDS finishes initialising.

Requests:
- `response_nonce` other than the latest response's: STALE. Its ACK/NACK is ignored; a
  subscription change in it still counts (in delta xDS the two are independent).
- The latest nonce, not answered yet: no `error_detail` is an ACK (the resources become
  `acked`); with `error_detail` a NACK. Envoy applies none of a rejected response's
  versions, and its text rarely says which resource it refused, so the response's resources
  are rejected together: none of them is sent again until one of them changes or goes away
  (then the others are offered again with it: the culprit may have been that one).
- Anything else: a subscription change only.

Answers (what the cache records, with the same meaning as for state of the world, so status,
quarantine and drain decisions read both protocols alike):
- Each response is built from one snapshot version of its type and answers it: ACKed, or
  NACKed with Envoy's text and the names new or changed since the stream's last ACK.
- A version that still holds a resource Envoy rejected (same content, so not resent) is
  answered as rejected, with Envoy's text, even when the response carrying the rest is
  ACKed: Envoy does not run that version, as a state-of-the-world NACK would also say.
- A new snapshot version with nothing to send (its changes are outside the subscription, or
  it restores what Envoy has) is answered at once, like the response it needs none of; one
  that arrives while a response with the same content is in flight is answered with it.

Responses (as stream.py):
- At most one unanswered response per type: a burst of snapshot changes collapses into one
  diff against what the stream offered.
- Push order SDS -> CDS -> EDS -> ECDS -> LDS -> RDS. If CDS or EDS has something new to send
  but still waits for Envoy's answer to the previous one, ECDS, LDS and RDS wait too (a route
  must not arrive before its cluster); EDS and SDS never wait.
- Make-before-break removal: CDS sends new and changed clusters at once, but removes clusters
  only when ECDS, LDS and RDS of the current snapshot are sent and ACKed (nothing can use the
  removed clusters any more). A response that leaves removals for later has its own version
  (not the snapshot's), as stream.py's intermediate CDS. A rejected LDS/RDS keeps them.
- A changed cluster is re-created by Envoy, which then waits for its endpoints without asking
  (the name is subscribed already): its endpoints are sent again right after it, so it warms
  at once instead of when Envoy's fetch times out (15 s). A name subscribed again is sent
  again too (Envoy may have dropped its copy).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.message import Message

from controlplane.xds.resource_types import CLUSTER, ENDPOINT, push_rank
from controlplane.xds.snapshot import Messages, Resource, Snapshot, TypeSnapshot
from controlplane.xds.stream import CLUSTER_TYPES, ROUTING_TYPES

DeltaRequest = Any  # discovery_pb2.DeltaDiscoveryRequest (generated code has no type stubs)
DeltaResponse = Any

WILDCARD = "*"


class DeltaKind(enum.Enum):
    INITIAL = "initial"
    ACK = "ack"
    NACK = "nack"
    SUBSCRIBE = "subscribe"  # a subscription change only
    STALE = "stale"


@dataclass(frozen=True)
class Answer:
    """Envoy's answer to one snapshot version of a type, for the cache to record.

    `version` is the response's system_version_info (the snapshot version, or an intermediate
    CDS version). Accepted (`error` empty): `resources` is what Envoy holds of the type.
    Rejected: `error` is Envoy's text and `changed` the names new or changed since the stream's
    last ACK that the rejection concerns.
    """

    type_url: str
    version: str
    snapshot_version: str
    resources: Mapping[str, Message] = field(default_factory=lambda: MappingProxyType({}))
    error: str = ""
    changed: frozenset[str] = frozenset()

    @property
    def accepted(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class DeltaVerdict:
    """What a request meant, and the answers it gave (an ACK/NACK answers the snapshot version
    its response was built from, and any that arrived while it was in flight)."""

    kind: DeltaKind
    type_url: str
    answers: tuple[Answer, ...] = ()


@dataclass(frozen=True)
class DeltaPlan:
    """Responses to write now, in push order, and answers that needed no response."""

    responses: tuple[DeltaResponse, ...] = ()
    answers: tuple[Answer, ...] = ()


@dataclass(frozen=True)
class _Rejection:
    """Resources Envoy refused together (one NACKed response), at the versions refused."""

    versions: Mapping[str, str]
    message: str


@dataclass(frozen=True)
class _Sent:
    nonce: str
    version: str
    snapshot_version: str
    resources: Mapping[str, Resource]  # added or changed
    removed: frozenset[str]
    complete: bool  # brings Envoy to the snapshot version (no removal left for later)


@dataclass(frozen=True)
class _Diff:
    updates: Mapping[str, Resource]
    removals: frozenset[str]
    held: frozenset[str]  # removals left for later (make-before-break)
    dissolved: tuple[_Rejection, ...]  # rejections whose resources are offered again

    @property
    def sendable(self) -> bool:
        return bool(self.updates or self.removals)

    @property
    def empty(self) -> bool:
        return not (self.updates or self.removals or self.held)


_NO_DIFF = _Diff(MappingProxyType({}), frozenset(), frozenset(), ())


@dataclass
class _TypeState:
    wildcard: bool = False
    names: set[str] = field(default_factory=set)
    offered: dict[str, str] = field(default_factory=dict)  # name -> version Envoy has or got
    acked: dict[str, Resource] = field(default_factory=dict)
    # initial_resource_versions not matched against a snapshot yet (the ones whose content
    # we know become `acked`)
    adopt: dict[str, str] | None = None
    rejections: list[_Rejection] = field(default_factory=list)
    last: _Sent | None = None
    awaiting: bool = False  # `last` is neither ACKed nor NACKed yet
    covered: list[str] = field(default_factory=list)  # snapshot versions `last` also answers
    answered: str | None = None  # the latest snapshot version answered
    force: bool = False  # answer even with nothing to send (the type's first request)
    # The type snapshot the stream has nothing to send for (skips recomputing the diff of a
    # large type on every request); reset whenever the subscription or `offered` changes.
    clean_for: TypeSnapshot | None = None

    @property
    def interested(self) -> bool:
        return self.wildcard or bool(self.names)


class DeltaStreamState:
    """Per-stream, per-type incremental xDS state machine (see the module docstring)."""

    def __init__(self, new_version: Callable[[], str], new_nonce: Callable[[], str]) -> None:
        self._new_version = new_version
        self._new_nonce = new_nonce
        self._types: dict[str, _TypeState] = {}

    # ----- requests -----------------------------------------------------------------------

    def on_request(self, request: DeltaRequest) -> DeltaVerdict:
        type_url: str = request.type_url
        ts = self._types.get(type_url)
        if ts is None:
            ts = self._types[type_url] = _TypeState()
            _subscribe(ts, request, first=True)
            initial = dict(request.initial_resource_versions)
            ts.offered = initial
            ts.adopt = initial
            ts.force = True
            return DeltaVerdict(DeltaKind.INITIAL, type_url)
        dropped = _subscribe(ts, request, first=False)
        nonce: str = request.response_nonce
        if not nonce or ts.last is None or nonce != ts.last.nonce or not ts.awaiting:
            kind = DeltaKind.SUBSCRIBE
            if nonce and (ts.last is None or nonce != ts.last.nonce):
                kind = DeltaKind.STALE
            if dropped and not ts.awaiting and ts.answered is not None:
                # Envoy holds less of the type now: say so, as the answer to the same version.
                return DeltaVerdict(kind, type_url, (self._answer(ts, type_url, ts.answered),))
            return DeltaVerdict(kind, type_url)
        ts.awaiting = False
        sent = ts.last
        # Snapshot versions that arrived in flight with the same content are answered with it
        # (after an incomplete response, the next plan answers them).
        covered = ts.covered if sent.complete else []
        ts.covered = []
        if sent.complete:
            ts.answered = covered[-1] if covered else sent.snapshot_version
        if request.HasField("error_detail"):
            message: str = request.error_detail.message
            changed = _changed(ts, sent.resources)
            if sent.resources:
                refused = MappingProxyType({n: r.version for n, r in sent.resources.items()})
                ts.rejections.append(_Rejection(refused, message))
            answers = [
                Answer(type_url, version, snapshot_version, error=message, changed=changed)
                for version, snapshot_version in [
                    (sent.version, sent.snapshot_version),
                    *((v, v) for v in covered),
                ]
            ]
            return DeltaVerdict(DeltaKind.NACK, type_url, tuple(answers))
        ts.acked.update(sent.resources)
        for name in sent.removed:
            ts.acked.pop(name, None)
        if not ts.wildcard:
            # Unsubscribed in this same request: Envoy dropped what it just acknowledged.
            for name in [n for n in sent.resources if n not in ts.names]:
                ts.acked.pop(name, None)
        first = self._answer(ts, type_url, sent.version, sent.snapshot_version)
        rest = [self._answer(ts, type_url, v, v) for v in covered]
        return DeltaVerdict(DeltaKind.ACK, type_url, (first, *rest))

    # ----- responses ----------------------------------------------------------------------

    def plan(self, snapshot: Snapshot | None) -> DeltaPlan:
        """Responses to write now, in push order (recorded as sent), and the answers given
        without a response."""
        if snapshot is None:
            return DeltaPlan()
        responses: list[DeltaResponse] = []
        answers: list[Answer] = []
        hold_routes = False
        for type_url in sorted(self._types, key=push_rank):
            if hold_routes and type_url in ROUTING_TYPES:
                continue
            ts = self._types[type_url]
            snap = snapshot.types.get(type_url)
            if snap is None:
                continue  # a type this node's snapshot does not serve
            _adopt(ts, snap)
            if not ts.interested and not ts.force:
                continue  # subscribed to nothing
            diff = self._diff(type_url, ts, snap, snapshot)
            if diff.dissolved and not diff.sendable:
                # The rejected resources went away with nothing of them to offer again (a
                # named one the snapshot dropped): the rejection no longer stands.
                _forget(ts, diff.dissolved, diff.updates)
            if not diff.sendable and not ts.force:
                if diff.empty and ts.answered != snap.version:
                    if not ts.awaiting:
                        ts.answered = snap.version
                        answers.append(self._answer(ts, type_url, snap.version, snap.version))
                    elif ts.last is not None and snap.version not in (
                        ts.last.snapshot_version,
                        *ts.covered,
                    ):
                        ts.covered.append(snap.version)  # answered with the response in flight
                continue
            if ts.awaiting:
                # Clusters/endpoints Envoy has not got yet: listeners and routes must not
                # overtake them. EDS is never held back: Envoy delays its CDS ACK until new
                # clusters warmed, which needs their endpoints.
                hold_routes = hold_routes or type_url in CLUSTER_TYPES
                continue
            responses.append(self._send(type_url, ts, snap, diff))
        return DeltaPlan(tuple(responses), tuple(answers))

    def _diff(self, type_url: str, ts: _TypeState, snap: TypeSnapshot, snapshot: Snapshot) -> _Diff:
        if ts.clean_for is snap:
            return _NO_DIFF
        offered = ts.offered
        removals: frozenset[str] = frozenset()
        if ts.wildcard:
            desired: Mapping[str, Resource] = snap.resources
            # Only a wildcard subscription removes: for named ones, as in state of the world,
            # absence means nothing (Envoy keeps an endpoint set or route table a cluster or
            # listener still names, until it unsubscribes).
            removals = frozenset(n for n in offered if n not in desired)
        else:
            desired = {n: snap.resources[n] for n in ts.names if n in snap.resources}
        updates = {n: r for n, r in desired.items() if offered.get(n) != r.version}
        dissolved: list[_Rejection] = []
        for rejection in ts.rejections:
            if any(
                n not in desired or desired[n].version != v or offered.get(n) != v
                for n, v in rejection.versions.items()
            ):
                dissolved.append(rejection)
                for n, v in rejection.versions.items():
                    if n in desired and desired[n].version == v:
                        updates[n] = desired[n]
        held: frozenset[str] = frozenset()
        if type_url == CLUSTER and removals and not self._routes_settled(snapshot):
            held, removals = removals, frozenset()
        ordered = MappingProxyType({n: updates[n] for n in sorted(updates)})
        diff = _Diff(ordered, removals, held, tuple(dissolved))
        if diff.empty and not dissolved:
            ts.clean_for = snap  # nothing to do until the snapshot or the stream changes
        return diff

    def _routes_settled(self, snapshot: Snapshot) -> bool:
        """ECDS, LDS and RDS of the current snapshot are sent and ACKed (nothing can use
        clusters the snapshot dropped)."""
        for type_url in ROUTING_TYPES:
            ts = self._types.get(type_url)
            if ts is None:
                continue
            if ts.awaiting or _standing(ts):
                return False
            snap = snapshot.types.get(type_url)
            if snap is None or not ts.interested:
                continue
            if not self._diff(type_url, ts, snap, snapshot).empty:
                return False
        return True

    def _send(
        self, type_url: str, ts: _TypeState, snap: TypeSnapshot, diff: _Diff
    ) -> DeltaResponse:
        complete = not diff.held
        version = snap.version if complete else self._new_version()
        nonce = self._new_nonce()
        if type_url == CLUSTER:
            self._rewarm_endpoints([r for n, r in diff.updates.items() if n in ts.offered])
        for name, resource in diff.updates.items():
            ts.offered[name] = resource.version
        for name in diff.removals:
            del ts.offered[name]
        if diff.dissolved:
            _forget(ts, diff.dissolved, diff.updates)
        ts.last = _Sent(
            nonce=nonce,
            version=version,
            snapshot_version=snap.version,
            resources=diff.updates,
            removed=diff.removals,
            complete=complete,
        )
        ts.awaiting = True
        ts.force = False
        ts.covered = []
        ts.clean_for = None
        return discovery_pb2.DeltaDiscoveryResponse(
            system_version_info=version,
            type_url=type_url,
            nonce=nonce,
            resources=[
                discovery_pb2.Resource(name=name, version=r.version, resource=r.packed)
                for name, r in diff.updates.items()
            ],
            removed_resources=sorted(diff.removals),
        )

    def _rewarm_endpoints(self, recreated: list[Resource]) -> None:
        """Envoy re-creates a changed cluster and waits for its endpoints, but asks for none:
        the name is subscribed already. Send them again (right after the clusters, EDS being
        next in push order), or the cluster warms only when Envoy's fetch times out."""
        eds = self._types.get(ENDPOINT)
        if eds is None or not recreated:
            return
        for resource in recreated:
            cluster = resource.message
            name = cluster.eds_cluster_config.service_name or cluster.name
            if eds.wildcard or name in eds.names:
                eds.offered.pop(name, None)
                eds.clean_for = None

    @staticmethod
    def _answer(
        ts: _TypeState, type_url: str, version: str, snapshot_version: str | None = None
    ) -> Answer:
        """The answer to a version Envoy took all it was sent of: accepted, unless a resource
        of it is one Envoy rejected (and so was not sent again)."""
        snapshot_version = version if snapshot_version is None else snapshot_version
        standing = _standing(ts)
        if standing:
            names = frozenset(n for r in standing for n in r.versions)
            return Answer(
                type_url, version, snapshot_version, error=standing[-1].message, changed=names
            )
        # Parsed only when read: an ACK of the route table must not parse all of it.
        content = Messages(MappingProxyType(dict(ts.acked)))
        return Answer(type_url, version, snapshot_version, resources=content)


def _subscribe(ts: _TypeState, request: DeltaRequest, *, first: bool) -> bool:
    """Apply the request's subscription changes; whether Envoy dropped a resource it held."""
    subscribe = set(request.resource_names_subscribe)
    unsubscribe = set(request.resource_names_unsubscribe)
    if subscribe or unsubscribe:
        ts.clean_for = None
    if first and not subscribe and not unsubscribe:
        ts.wildcard = True  # legacy wildcard: the first request names nothing
    if WILDCARD in subscribe:
        ts.wildcard = True
    for name in subscribe - {WILDCARD}:
        ts.names.add(name)
        if not first:
            ts.offered.pop(name, None)  # subscribed again: Envoy may have dropped its copy
    dropped = set()
    for name in unsubscribe - {WILDCARD}:
        ts.names.discard(name)
        if not ts.wildcard:
            dropped.add(name)
    if WILDCARD in unsubscribe:
        ts.wildcard = False
        dropped |= {n for n in ts.offered if n not in ts.names}
    for name in dropped:
        ts.offered.pop(name, None)
        ts.acked.pop(name, None)
    if dropped:
        # A rejection that concerned a dropped resource may have been its: offer the others
        # of it again.
        kept: list[_Rejection] = []
        for rejection in ts.rejections:
            if dropped.isdisjoint(rejection.versions):
                kept.append(rejection)
                continue
            for name in rejection.versions:
                ts.offered.pop(name, None)
        ts.rejections = kept
    return bool(dropped)


def _forget(
    ts: _TypeState, dissolved: tuple[_Rejection, ...], updates: Mapping[str, Resource]
) -> None:
    """Drop rejections that no longer stand. Envoy never took their resources: one not sent
    again now is no longer offered either, so it is sent if it comes back as it was."""
    for rejection in dissolved:
        for name, version in rejection.versions.items():
            if name not in updates and ts.offered.get(name) == version:
                del ts.offered[name]
    ts.rejections = [r for r in ts.rejections if r not in dissolved]
    ts.clean_for = None


def _adopt(ts: _TypeState, snap: TypeSnapshot) -> None:
    """Resources a reconnecting Envoy already has, at the version we would send, count as
    ACKed (their content is known: it is the snapshot's)."""
    if ts.adopt is None:
        return
    for name, version in ts.adopt.items():
        resource = snap.resources.get(name)
        if resource is not None and resource.version == version:
            ts.acked[name] = resource
    ts.adopt = None


def _standing(ts: _TypeState) -> list[_Rejection]:
    """Rejections still in force: their resources are offered at the rejected versions."""
    return [r for r in ts.rejections if all(ts.offered.get(n) == v for n, v in r.versions.items())]


def _changed(ts: _TypeState, resources: Mapping[str, Resource]) -> frozenset[str]:
    """Names new or different from what the stream's Envoy had ACKed."""
    return frozenset(
        n for n, r in resources.items() if n not in ts.acked or ts.acked[n].version != r.version
    )
