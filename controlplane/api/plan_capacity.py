"""Capacity in a plan (`meshline plan`, `apply --dry-run`): each requested deployment's
footprints, read the way the reconciler reads them, and whether its workers fit in each of its
regions now (`controlplane.explain_capacity`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from controlplane.explain_capacity import (
    DECLARED,
    ESTIMATED,
    MEASURED,
    PlannedDeployment,
    RegionRoom,
    TrackFootprint,
    capacity_plans,
)
from controlplane.policy import ResolvedDeployment
from controlplane.reconcile.capacity import (
    declared_memory,
    footprint_key,
    track_footprints,
    track_versions,
)
from controlplane.reconcile.plan import is_packed
from controlplane.store.footprints import Footprint
from meshline.keys import DeploymentKey, TrackKey
from meshline.v1.resources_pb2 import Deployment, Model, RegionCapacityPlan


def deployment_footprints(
    resolved: ResolvedDeployment,
    deployment: Deployment,
    models: Sequence[Model],
    measured: Mapping[tuple[str, str], Footprint],
) -> tuple[TrackFootprint, ...]:
    """What one worker of each of its tracks is planned to use (as capacity admission will
    count it: the larger of the version's footprint and the declared `resources.memory`)."""
    versions = track_versions([resolved], models)
    packed = {key for key, version in versions.items() if is_packed(version, deployment.spec)}
    declared = declared_memory([deployment])
    footprints = track_footprints(versions, measured, declared, packed)
    out = []
    for track in resolved.tracks:
        key = TrackKey(resolved.environment, resolved.name, track.name)
        version = versions.get(key)
        if version is None:
            continue
        own = footprint_key(version, key in packed) in measured
        size = footprints[key]
        if declared.get(resolved.key, 0) >= size and resolved.key in declared:
            source = DECLARED
        else:
            source = MEASURED if own else ESTIMATED
        out.append(TrackFootprint(track.name, track.version, size, source, key in packed))
    return tuple(out)


def request_capacity(
    requested: Sequence[DeploymentKey],
    resolved: Mapping[DeploymentKey, ResolvedDeployment],
    deployments: Mapping[tuple[str, str], Deployment],
    models: Sequence[Model],
    measured: Mapping[tuple[str, str], Footprint],
    rooms: Mapping[str, RegionRoom],
) -> dict[DeploymentKey, list[RegionCapacityPlan]]:
    """Per requested deployment (in request order), per region: whether it fits now."""
    planned = [
        PlannedDeployment(
            resolved[key],
            deployment_footprints(resolved[key], deployments[key], models, measured),
        )
        for key in requested
        if key in resolved and key in deployments
    ]
    return capacity_plans(planned, rooms)
