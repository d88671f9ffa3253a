"""`apply --dry-run` says per region whether a deployment's workers fit, from the region's
memory as its real agent reported it: with a 600 MiB budget, one 512 MiB worker starts, a
second waits with admission's numbers, and a deployment with `min_replicas: 0` starts nothing
until invoked. Nothing is stored and no worker starts.

Real control plane, agents and Envoy gateways (regions eu and us).
"""

from __future__ import annotations

from pathlib import Path

from meshline.v1 import api_pb2, resources_pb2
from tests.e2e.conftest import deployment_yaml
from tests.harness.mesh import Mesh
from tests.harness.processes import wait_until

MIB = 2**20


def _set_budget(mesh: Mesh, region: str, budget: str) -> None:
    changed = resources_pb2.Region(metadata=resources_pb2.ObjectMeta(name=region))
    changed.spec.CopyFrom(mesh.region(region).spec)
    changed.spec.memory_budget = budget
    mesh.apply_resources([api_pb2.Resource(region=changed)])


def _plan(mesh: Mesh, text: str) -> resources_pb2.RegionCapacityPlan:
    reply = mesh.apply(text, dry_run=True)
    (result,) = [r for r in reply.results if r.kind == "Deployment"]
    (eu,) = result.plan.capacity
    return eu


def test_a_dry_run_says_whether_the_workers_fit_the_region_now(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    before = mesh.region("eu").spec.memory_budget
    _set_budget(mesh, "eu", "600Mi")
    try:
        wait_until(
            lambda: mesh.region("eu").status.capacity.memory_budget_bytes == 600 * MIB,
            60,
            "eu's agent to report its machine and the new budget to count",
        )
        one = {"v1": models["v1"]}
        fits = _plan(mesh, deployment_yaml("planned", one, "v1", ["eu"], memory="512Mi"))
        assert (fits.region, fits.outcome, fits.workers) == ("eu", "starts", 1)
        assert (fits.footprint_bytes, fits.footprint_source) == (512 * MIB, "declared")
        assert fits.memory_known and fits.memory_budget_bytes == 600 * MIB
        assert fits.memory_free_bytes >= 512 * MIB

        two = deployment_yaml("planned", one, "v1", ["eu"], replicas=2, memory="512Mi")
        waits = _plan(mesh, two)
        assert (waits.outcome, waits.workers) == ("waits", 2)
        assert waits.reason.startswith("region 'eu' has ")
        assert waits.reason.endswith(
            "free of its 600 MiB memory budget, version 'v1' needs 512 MiB: 1 of 2 wanted "
            "workers run"
        )

        lazy = deployment_yaml(
            "planned", one, "v1", ["eu"], scaling="{min_replicas: 0, max_replicas: 2}"
        )
        until = _plan(mesh, lazy)
        assert (until.outcome, until.workers) == ("until-invoked", 0)
        assert until.reason == "its first request starts a worker, which fits now"

        listed = mesh.deployments.ListDeployments(api_pb2.ListDeploymentsRequest(), timeout=10)
        assert "planned" not in [d.metadata.name for d in listed.deployments]
        assert not mesh.worker_pids("eu", "planned")
    finally:
        _set_budget(mesh, "eu", before)
