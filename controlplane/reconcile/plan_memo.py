"""What a rebuild derives from the store alone, kept while the store does not change.

Every agent report, Envoy ACK and activator wake starts a rebuild, and a cold start waits for
several in a row. Most of them change nothing in the store, yet each one read every resource,
resolved every deployment's policies, hashed every workload and named every track's clusters
again: at 1,000 deployments that was a third of a ~0.3 s pass, paid several times per cold
start. The store's revision changes with every committed change (and its epoch with every
open), so a snapshot and everything derived from it are reused while both stay the same and the
rollouts serve the same tracks. When the store did change, each deployment's resolution and
each track's revision come from memory unless their own inputs changed (a change touches one
deployment; planning 10,000 afresh took ~1 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from controlplane.ir.index import ClusterIndex
from controlplane.policy import ResolveMemo
from controlplane.policy.settings import Track
from controlplane.quarantine.fingerprint import fingerprints
from controlplane.reconcile.capacity import declared_memory, track_versions
from controlplane.reconcile.plan import NetworkPlan, RevisionMemo, plan_network
from controlplane.store import Store, StoreSnapshot
from meshline.keys import DeploymentKey, TrackKey
from meshline.v1 import resources_pb2


@dataclass(frozen=True)
class StoreDerived:
    """A plan and the figures a rebuild reads off the store with it. Shared between rebuilds:
    read-only, except `plan()`'s state, which is a fresh copy each time."""

    snapshot: StoreSnapshot
    tracks: Mapping[DeploymentKey, tuple[Track, ...]]
    template: NetworkPlan
    # The names the IR gives the planned tracks' clusters.
    planned_clusters: ClusterIndex
    # Each deployment's configuration fingerprint (quarantine).
    configured: dict[DeploymentKey, str]
    # The model version every placed track runs, and declared memory (capacity).
    versions: dict[TrackKey, resources_pb2.ModelVersion]
    declared: dict[DeploymentKey, int]
    packed: frozenset[TrackKey]

    def plan(self) -> NetworkPlan:
        return self.template.fresh()


def derive(
    snapshot: StoreSnapshot,
    tracks: Mapping[DeploymentKey, tuple[Track, ...]],
    resolutions: ResolveMemo,
    revisions: RevisionMemo,
) -> StoreDerived:
    plan = plan_network(snapshot, tracks, resolutions, revisions)
    return StoreDerived(
        snapshot=snapshot,
        tracks=dict(tracks),
        template=plan,
        planned_clusters=ClusterIndex.of_tracks(
            TrackKey(r.environment, r.name, t.name) for r in plan.resolved for t in r.tracks
        ),
        configured=fingerprints(snapshot.deployments, snapshot.environments),
        versions=track_versions(plan.resolved, snapshot.models),
        declared=declared_memory(snapshot.deployments),
        packed=frozenset(key for key, workload in plan.workloads.items() if workload.packed),
    )


class PlanMemo:
    """The store's snapshot and what is derived from it, read again only after a change."""

    def __init__(self) -> None:
        self._snapshot: StoreSnapshot | None = None
        self._derived: StoreDerived | None = None
        # A change in the store plans the network again: each deployment's resolution and
        # each track's revision are taken from memory unless their inputs changed.
        self.resolutions = ResolveMemo()
        self.revisions = RevisionMemo()
        # For tests: how many rebuilds derived afresh.
        self.derivations = 0

    def snapshot(self, store: Store) -> StoreSnapshot:
        last = self._snapshot
        if last is None or (last.epoch, last.revision) != (store.epoch, store.revision):
            self._snapshot = last = store.snapshot()
        return last

    def derive(
        self, snapshot: StoreSnapshot, tracks: Mapping[DeploymentKey, tuple[Track, ...]]
    ) -> StoreDerived:
        last = self._derived
        if last is None or last.snapshot is not snapshot or last.tracks != tracks:
            self._derived = last = derive(snapshot, tracks, self.resolutions, self.revisions)
            self.derivations += 1
        return last
