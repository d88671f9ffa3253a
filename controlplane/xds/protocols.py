"""Each ADS protocol's stream state, wired to the cache's bookkeeping.

State of the world (stream.py) and incremental (delta_stream.py) decide differently what to
send, but report the same facts to `SnapshotCache`: what was sent, and Envoy's answer to each
snapshot version of each type (ACK with what Envoy holds, or NACK with Envoy's text). So
status, quarantine and drain decisions read one record whichever protocol a region's Envoy
speaks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from controlplane.xds.cache import SnapshotCache
from controlplane.xds.delta_stream import Answer, DeltaKind, DeltaStreamState
from controlplane.xds.snapshot import Snapshot
from controlplane.xds.stream import RequestKind, StreamState

log = logging.getLogger(__name__)

Request = Any  # DiscoveryRequest or DeltaDiscoveryRequest
Response = Any


class StreamProtocol(Protocol):
    """One ADS stream's protocol: handles a request, plans the responses to write."""

    def on_request(self, node_id: str, request: Request) -> None: ...

    def plan(self, node_id: str, snapshot: Snapshot | None) -> Sequence[Response]: ...


class SotwProtocol:
    """State of the world: `StreamState`'s verdicts recorded in the cache."""

    def __init__(self, cache: SnapshotCache) -> None:
        self._cache = cache
        self._state = StreamState(cache.next_version, cache.next_nonce)

    def on_request(self, node_id: str, request: Request) -> None:
        verdict = self._state.on_request(request)
        if verdict.kind is RequestKind.ACK and verdict.version is not None:
            self._cache.record_ack(
                node_id,
                verdict.type_url,
                verdict.version,
                verdict.resources,
                snapshot_version=verdict.snapshot_version,
            )
        elif verdict.kind is RequestKind.NACK and verdict.version is not None:
            log.warning(
                "node %s rejected %s version %s: %s",
                node_id,
                verdict.type_url,
                verdict.version,
                verdict.error,
            )
            self._cache.record_nack(
                node_id,
                verdict.type_url,
                verdict.version,
                verdict.error,
                snapshot_version=verdict.snapshot_version,
                changed=verdict.changed,
            )
        elif verdict.kind is RequestKind.STALE:
            log.debug("node %s: stale nonce for %s ignored", node_id, verdict.type_url)

    def plan(self, node_id: str, snapshot: Snapshot | None) -> Sequence[Response]:
        responses = self._state.plan(snapshot)
        for response in responses:
            self._cache.record_sent(node_id, response.type_url, response.version_info)
        return responses


class DeltaProtocol:
    """Incremental: `DeltaStreamState`'s answers recorded in the cache, as SotW's are."""

    def __init__(self, cache: SnapshotCache) -> None:
        self._cache = cache
        self._state = DeltaStreamState(cache.next_version, cache.next_nonce)

    def on_request(self, node_id: str, request: Request) -> None:
        verdict = self._state.on_request(request)
        if verdict.kind is DeltaKind.STALE:
            log.debug("node %s: stale nonce for %s ignored", node_id, verdict.type_url)
        elif verdict.kind is DeltaKind.NACK:
            log.warning(
                "node %s rejected %s version %s (delta): %s",
                node_id,
                verdict.type_url,
                verdict.answers[0].version,
                verdict.answers[0].error,
            )
        self._record(node_id, verdict.answers)

    def plan(self, node_id: str, snapshot: Snapshot | None) -> Sequence[Response]:
        plan = self._state.plan(snapshot)
        for answer in plan.answers:
            # Nothing to send for this version: Envoy has it (or refuses it) already.
            self._cache.record_sent(node_id, answer.type_url, answer.version)
        self._record(node_id, plan.answers)
        for response in plan.responses:
            self._cache.record_sent(node_id, response.type_url, response.system_version_info)
        return plan.responses

    def _record(self, node_id: str, answers: Iterable[Answer]) -> None:
        for answer in answers:
            if answer.accepted:
                self._cache.record_ack(
                    node_id,
                    answer.type_url,
                    answer.version,
                    answer.resources,
                    snapshot_version=answer.snapshot_version,
                )
            else:
                self._cache.record_nack(
                    node_id,
                    answer.type_url,
                    answer.version,
                    answer.error,
                    snapshot_version=answer.snapshot_version,
                    changed=answer.changed,
                )
