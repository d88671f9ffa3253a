"""Placement and workloads of every deployment, from one consistent store snapshot. Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace

from google.protobuf import json_format

from controlplane.policy import ResolvedDeployment, ResolveMemo, resolve_network
from controlplane.policy.settings import Track
from controlplane.reconcile.state import NetworkState
from controlplane.registry.identity import serving_identity
from controlplane.store import StoreSnapshot
from meshline.keys import DeploymentKey, TrackKey
from meshline.packing import PACKING_SHARED
from meshline.v1 import agent_pb2, resources_pb2


@dataclass(frozen=True)
class NetworkPlan:
    """Placement and workloads of every deployment, from one consistent store snapshot."""

    resolved: tuple[ResolvedDeployment, ...]
    workloads: dict[TrackKey, agent_pb2.Workload]
    regions: dict[str, resources_pb2.Region]
    state: NetworkState

    def fresh(self) -> NetworkPlan:
        """This plan with a state of its own, for a rebuild to fill in (the plan is shared)."""
        s = self.state
        state = NetworkState(
            placements=dict(s.placements),
            placement_errors=dict(s.placement_errors),
            generations=dict(s.generations),
            revisions={key: dict(tracks) for key, tracks in s.revisions.items()},
            resolved=dict(s.resolved),
        )
        return NetworkPlan(self.resolved, self.workloads, self.regions, state)


def is_packed(version: resources_pb2.ModelVersion, spec: resources_pb2.DeploymentSpec) -> bool:
    """Loaded into a shared worker: the deployment asks for it and the version is a Torch model
    meshline runs (a split or mirror leg of another runtime runs in its own process)."""
    return (
        spec.resources.packing == PACKING_SHARED
        and not version.HasField("external")
        and (version.runtime or "torch") == "torch"
    )


def workload_revision(
    version: resources_pb2.ModelVersion, spec: resources_pb2.DeploymentSpec | None = None
) -> str:
    """Changes exactly when a running worker must be replaced: another model version or
    artifact, or other serving settings (batching, instances) that a worker takes at start."""
    parts: dict[str, object] = {
        "version": json_format.MessageToDict(
            serving_identity(version), preserving_proto_field_name=True
        )
    }
    if spec is not None:
        # What the worker is started with, normalised: settings equal to the defaults, or
        # written in another order, must not restart anything.
        batching = resources_pb2.BatchingSpec()
        batching.CopyFrom(spec.batching)
        batching.preferred_batch_sizes[:] = sorted(set(batching.preferred_batch_sizes))
        if batching != resources_pb2.BatchingSpec():
            parts["batching"] = json_format.MessageToDict(
                batching, preserving_proto_field_name=True
            )
        if spec.instances > 1:
            parts["instances"] = spec.instances
        if is_packed(version, spec):
            parts["packing"] = PACKING_SHARED
    # Without serving settings: the hash of the version alone, as before they existed.
    payload = json.dumps(parts if len(parts) > 1 else parts["version"], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class RevisionMemo:
    """`workload_revision` remembered by its inputs in wire form: hashing a version's JSON
    for every track of every deployment on every plan was a tenth of a rebuild at 1,000
    deployments, and a change touches one of them."""

    def __init__(self) -> None:
        self._known: dict[tuple[bytes, bytes], str] = {}
        self._used: dict[tuple[bytes, bytes], str] = {}

    def revision(
        self, version: resources_pb2.ModelVersion, spec: resources_pb2.DeploymentSpec
    ) -> str:
        key = (
            version.SerializeToString(deterministic=True),
            spec.SerializeToString(deterministic=True),
        )
        found = self._used.get(key) or self._known.get(key)
        if found is None:
            found = workload_revision(version, spec)
        self._used[key] = found
        return found

    def end_pass(self) -> None:
        """Only what the last plan asked for is kept (about one network's worth)."""
        self._known, self._used = self._used, {}


def plan_network(
    snapshot: StoreSnapshot,
    tracks: Mapping[DeploymentKey, tuple[Track, ...]] | None = None,
    resolutions: ResolveMemo | None = None,
    revisions_memo: RevisionMemo | None = None,
) -> NetworkPlan:
    """Resolve every deployment's policies and the workloads its regions run; `tracks`
    replaces the versions the policies give (a rollout in progress, or rolled back).
    `resolutions` and `revisions_memo`: what earlier plans computed (the same result, faster)."""
    environments = {e.metadata.name: e for e in snapshot.environments}
    models = {m.metadata.name: m for m in snapshot.models}
    specs = {
        DeploymentKey(d.spec.environment, d.metadata.name): d.spec for d in snapshot.deployments
    }
    network = resolve_network(snapshot.deployments, environments, snapshot.regions, resolutions)
    state = NetworkState(
        placement_errors=dict(network.errors),
        generations={
            DeploymentKey(d.spec.environment, d.metadata.name): d.metadata.generation
            for d in snapshot.deployments
        },
    )
    workloads: dict[TrackKey, agent_pb2.Workload] = {}
    for key, resolved in sorted(network.deployments.items()):
        if tracks and key in tracks:
            resolved = replace(resolved, tracks=tracks[key])
        versions = {v.name: v for v in models[resolved.model].spec.versions}
        missing = [t.version for t in resolved.tracks if t.version not in versions]
        if missing:
            # E.g. the version a rollout serves was removed from the model: this deployment
            # fails with the reason, the rest of the network is still configured.
            state.placement_errors[key] = (
                f"model '{resolved.model}' has no version '{missing[0]}' any more, which this "
                "deployment still serves (re-add it, or set the deployment's version)"
            )
            continue
        state.placements[key] = resolved.placement.regions
        state.resolved[key] = resolved
        revisions = state.revisions.setdefault(key, {})
        spec = specs[key]
        for track in resolved.tracks:
            version = versions[track.version]
            revisions[track.name] = (
                revisions_memo.revision(version, spec)
                if revisions_memo is not None
                else workload_revision(version, spec)
            )
            workloads[TrackKey(*key, track.name)] = agent_pb2.Workload(
                deployment=resolved.name,
                environment=resolved.environment,
                revision=revisions[track.name],
                runtime=version.runtime,
                model_path=version.artifact_path or version.path,
                artifact_sha256=version.sha256 if version.artifact_path else "",
                signature=version.signature,
                replicas=resolved.replicas,
                model_version=version.name,
                track=track.name,
                batching=spec.batching,
                instances=max(1, spec.instances),
                external=version.external if version.HasField("external") else None,
                packed=is_packed(version, spec),
            )
    if revisions_memo is not None:
        revisions_memo.end_pass()
    return NetworkPlan(
        tuple(state.resolved[k] for k in sorted(state.resolved)),
        workloads,
        {r.metadata.name: r for r in snapshot.regions},
        state,
    )
