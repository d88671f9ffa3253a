"""What the last rebuild decided: the typed state that status, the API and the activator read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from controlplane.activator import HoldTarget
from controlplane.autoscale import RegionScale
from controlplane.confirmed import Confirmed
from controlplane.ir.index import ClusterIndex
from controlplane.ir.model import DeploymentRoute
from controlplane.moves import Move
from controlplane.policy import ResolvedDeployment
from controlplane.quarantine import Quarantine
from controlplane.reconcile.capacity import RegionMemory
from controlplane.rollout import RolloutView
from meshline.keys import DeploymentKey, PlacedTrackKey


class HoldSite(NamedTuple):
    """Where the activator got a held request: which gateway sent it, for which version."""

    gateway: str
    environment: str
    deployment: str
    version: str


@dataclass
class NetworkState:
    """What the last rebuild decided; read by the status provider."""

    placements: dict[DeploymentKey, tuple[str, ...]] = field(default_factory=dict)
    placement_errors: dict[DeploymentKey, str] = field(default_factory=dict)
    # The metadata.generation of each deployment this rebuild was made from.
    generations: dict[DeploymentKey, int] = field(default_factory=dict)
    # The worker revision each track of a deployment should run (status counts only those).
    revisions: dict[DeploymentKey, dict[str, str]] = field(default_factory=dict)
    resolved: dict[DeploymentKey, ResolvedDeployment] = field(default_factory=dict)
    # What each gateway was last given for each deployment (for `get deployment -o yaml`).
    routes: dict[DeploymentKey, dict[str, DeploymentRoute]] = field(default_factory=dict)
    # The names the IR gave every track's clusters (agents' reports are keyed by them).
    clusters: ClusterIndex = field(default_factory=ClusterIndex)
    # Region → deployment → its route in the config that region's Envoy last ACKed whole.
    confirmed: Confirmed = field(default_factory=dict)
    # The autoscaler's decision for every (environment, deployment, track, region) placed.
    scales: dict[PlacedTrackKey, RegionScale] = field(default_factory=dict)
    # Each deployment's rollout as the last rebuild saw it.
    rollouts: dict[DeploymentKey, RolloutView] = field(default_factory=dict)
    # Requests the activator held at the last rebuild, per placed track.
    held: Mapping[PlacedTrackKey, int] = field(default_factory=dict)
    # Where a request held at a gateway waits for.
    holds: dict[HoldSite, HoldTarget] = field(default_factory=dict)
    # Deployments a region's config leaves out because its Envoy rejected them: key → region.
    quarantined: dict[DeploymentKey, dict[str, Quarantine]] = field(default_factory=dict)
    # Region → the deployments a NACK still standing there concerns (absent: all of them).
    nack_blame: dict[str, frozenset[DeploymentKey]] = field(default_factory=dict)
    # Placement changes in progress: the old regions that keep serving, and what they wait for.
    moves: dict[DeploymentKey, Move] = field(default_factory=dict)
    # Each region's memory (budget, used, free) as admission saw it; absent before its agent
    # reported its machine.
    memory: dict[str, RegionMemory] = field(default_factory=dict)
