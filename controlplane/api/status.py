"""Live status comes from the data plane; the API only asks for it."""

from __future__ import annotations

from typing import Protocol

from meshline.v1.resources_pb2 import Deployment, DeploymentStatus, Region, RegionStatus


class StatusProvider(Protocol):
    """Answers what the data plane confirmed for a deployment or a region, right now."""

    def deployment_status(self, dep: Deployment) -> DeploymentStatus: ...

    def region_status(self, region: Region) -> RegionStatus: ...
