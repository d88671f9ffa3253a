"""Live status comes from the data plane; the API only asks for it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from controlplane.explain_capacity import RegionRoom
from controlplane.store.keys import rfc3339
from controlplane.store.region_certificates import RegionCertificate
from meshline.v1.resources_pb2 import Deployment, DeploymentStatus, Region, RegionStatus


class StatusProvider(Protocol):
    """Answers what the data plane confirmed for a deployment or a region, right now."""

    def deployment_status(self, dep: Deployment) -> DeploymentStatus: ...

    def region_status(self, region: Region) -> RegionStatus: ...


@runtime_checkable
class ManyStatuses(Protocol):
    """A StatusProvider that answers for many deployments from one look at the live state
    (a listing of 10,000 deployments)."""

    def deployment_statuses(self, deps: Sequence[Deployment]) -> list[DeploymentStatus]: ...


@runtime_checkable
class RegionRooms(Protocol):
    """A StatusProvider that says what each region has room for now, as capacity admission
    sees it (for the capacity part of a plan)."""

    def region_rooms(self) -> Mapping[str, RegionRoom]: ...


def statuses_of(provider: StatusProvider, deps: Sequence[Deployment]) -> list[DeploymentStatus]:
    """The status of each of `deps`: at once where the provider can, else one by one."""
    if isinstance(provider, ManyStatuses):
        return provider.deployment_statuses(deps)
    return [provider.deployment_status(d) for d in deps]


def add_certificate(status: RegionStatus, certificate: RegionCertificate | None) -> None:
    """The region's current mesh certificate (the store's record) into its status."""
    if certificate is None:
        return
    status.certificate_expires_at = rfc3339(certificate.not_after)
    status.certificate_serial = certificate.serial
