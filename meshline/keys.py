"""The identities every part of the mesh agrees on, one typed key each.

Named tuples: fields by name where code reads them, and still ordered, hashable and comparable
like the plain tuples they replace, so a key sorts and prints the same everywhere. The order
of the fields is the order of the hierarchy: environment, then deployment, then track, then
region.
"""

from __future__ import annotations

from typing import NamedTuple


class DeploymentKey(NamedTuple):
    """One deployment: its name is unique within its environment."""

    environment: str
    name: str


class TrackKey(NamedTuple):
    """One model version a deployment runs: its own (track "") or a split or mirror leg."""

    environment: str
    name: str
    track: str

    @property
    def deployment_key(self) -> DeploymentKey:
        return DeploymentKey(self.environment, self.name)


class PlacedTrackKey(NamedTuple):
    """One track of a deployment in one region: what the autoscaler scales."""

    environment: str
    name: str
    track: str
    region: str

    @property
    def deployment_key(self) -> DeploymentKey:
        return DeploymentKey(self.environment, self.name)

    @property
    def track_key(self) -> TrackKey:
        return TrackKey(self.environment, self.name, self.track)


class PlacedDeploymentKey(NamedTuple):
    """One deployment in one region (all its tracks): offload and cold-start records."""

    environment: str
    name: str
    region: str
