"""The deployments table's region cell: what each region's data plane confirmed, and its queue."""

from __future__ import annotations

from meshline.cli.render import _regions_cell
from meshline.v1 import resources_pb2


def _deployment(*regions: resources_pb2.RegionDeploymentStatus) -> resources_pb2.Deployment:
    dep = resources_pb2.Deployment()
    dep.status.regions.extend(regions)
    return dep


def test_a_queue_reported_by_the_workers_is_shown() -> None:
    dep = _deployment(
        resources_pb2.RegionDeploymentStatus(
            region="eu", config_acked=True, desired_replicas=2, healthy_endpoints=2,
            queued_requests=7, requests=100, batches=20,
        ),
        resources_pb2.RegionDeploymentStatus(
            region="us", config_acked=True, desired_replicas=2, healthy_endpoints=1
        ),
    )  # fmt: skip
    assert _regions_cell(dep) == "eu: 2/2 healthy, 7 queued, us: 1/2 healthy"
