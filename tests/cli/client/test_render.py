"""The deployments table's region cell: what each region's data plane confirmed, and its queue."""

from __future__ import annotations

import pytest

from cli.client.render import (
    OutputFormat,
    _regions_cell,
    _replicas_cell,
    capacity_line,
    effect_line,
    memory_cell,
    plan_lines,
    print_structured,
)
from meshline.v1 import api_pb2, resources_pb2


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


def test_scaled_to_zero_held_requests_and_cold_starts_are_shown() -> None:
    dep = _deployment(
        resources_pb2.RegionDeploymentStatus(
            region="eu", config_acked=True, scaled_to_zero=True, cold_starts=2,
            last_cold_start_s=1.84,
        ),
        resources_pb2.RegionDeploymentStatus(
            region="us", config_acked=True, desired_replicas=1, held_requests=3
        ),
    )  # fmt: skip
    assert _regions_cell(dep) == (
        "eu: scaled to zero, 2 cold starts (last 1.8s), us: 0/1 healthy, 3 held (cold start)"
    )


def test_replicas_of_an_autoscaled_deployment_show_now_and_bounds() -> None:
    dep = _deployment(
        resources_pb2.RegionDeploymentStatus(region="eu", current_replicas=2),
        resources_pb2.RegionDeploymentStatus(region="us", current_replicas=1),
    )
    dep.spec.scaling.max_replicas = 4
    assert _replicas_cell(dep) == "3 (0-4)"
    fixed = _deployment()
    fixed.spec.replicas = 2
    assert _replicas_cell(fixed) == "2"


def test_counts_of_one_are_singular() -> None:
    dep = _deployment(
        resources_pb2.RegionDeploymentStatus(
            region="us", config_acked=True, forwarding=True, healthy_endpoints=1
        ),
        resources_pb2.RegionDeploymentStatus(
            region="eu", config_acked=True, scaled_to_zero=True, cold_starts=1,
            last_cold_start_s=0.4,
        ),
    )  # fmt: skip
    assert _regions_cell(dep) == (
        "us: forwards (1 region reachable), eu: scaled to zero, 1 cold start (last 0.4s)"
    )


def test_a_region_a_move_leaves_shows_it_still_serves() -> None:
    dep = _deployment(
        resources_pb2.RegionDeploymentStatus(
            region="eu", config_acked=True, desired_replicas=1, healthy_endpoints=0
        ),
        resources_pb2.RegionDeploymentStatus(
            region="us", config_acked=True, desired_replicas=1, healthy_endpoints=1, leaving=True
        ),
    )
    assert _regions_cell(dep) == "eu: 0/1 healthy, us: 1/1 healthy, moving away"


def test_a_region_without_room_says_why_it_is_pending() -> None:
    reason = "region 'eu' has 400 MiB free of its 8.0 GiB memory budget, version 'v1' needs 1.1 GiB"
    dep = _deployment(
        resources_pb2.RegionDeploymentStatus(
            region="eu", config_acked=True, desired_replicas=0, pending_reason=reason
        )
    )
    assert _regions_cell(dep) == f"eu: 0/0 healthy, pending: {reason}"


def test_region_memory_reads_used_of_budget_and_free() -> None:
    gib = 2**30
    status = resources_pb2.RegionStatus(
        capacity=resources_pb2.RegionCapacity(
            memory_used_bytes=int(1.5 * gib),
            memory_budget_bytes=8 * gib,
            memory_free_bytes=400 * 2**20,
        )
    )
    assert memory_cell(status) == "1.5 GiB/8.0 GiB, 400 MiB free"
    assert memory_cell(resources_pb2.RegionStatus()) == "-"  # its agent has not reported yet


def test_yaml_output_keeps_unicode_readable(capsys: pytest.CaptureFixture[str]) -> None:
    dep = _deployment()
    dep.metadata.name = "demo"
    dep.status.message = "us → eu: waiting for a healthy worker"
    print_structured([dep], OutputFormat.yaml, single=True)
    out = capsys.readouterr().out
    assert "message: 'us → eu: waiting for a healthy worker'" in out or (
        "message: us → eu: waiting for a healthy worker" in out
    )
    assert "\\u2192" not in out


def test_a_side_effect_shows_the_move_and_each_changed_value() -> None:
    effect = api_pb2.DeploymentEffect(
        name="fraud",
        environment="production",
        placement_before=["eu", "us"],
        placement_after=["eu"],
        changed=["failover"],
        details=["failover.enabled: true → false"],
    )
    assert effect_line(effect, would=True) == (
        "  deployment/fraud in production would move eu, us → eu; "
        "would change failover.enabled: true → false"
    )
    effect.ClearField("placement_after")
    assert effect_line(effect, would=False) == (
        "  deployment/fraud in production moves eu, us → nowhere; "
        "changes failover.enabled: true → false"
    )


GIB = 2**30
MIB = 2**20


@pytest.mark.parametrize(
    ("plan", "line"),
    [
        (
            resources_pb2.RegionCapacityPlan(
                region="eu",
                outcome="starts",
                workers=1,
                footprint_bytes=300 * MIB,
                footprint_source="measured",
                memory_known=True,
                memory_free_bytes=5 * GIB,
                memory_budget_bytes=12 * GIB,
            ),
            "  capacity eu: starts 1 worker per version (needs 300 MiB, measured; "
            "5.0 GiB free of 12.0 GiB)",
        ),
        (
            resources_pb2.RegionCapacityPlan(
                region="eu",
                outcome="waits",
                workers=1,
                reason="region 'eu' has 400 MiB free of its 12.0 GiB memory budget, version "
                "'v1' needs 1.1 GiB: 0 of 1 wanted workers run",
            ),
            "  capacity eu: waits (Pending: region 'eu' has 400 MiB free of its 12.0 GiB memory "
            "budget, version 'v1' needs 1.1 GiB: 0 of 1 wanted workers run)",
        ),
        (
            resources_pb2.RegionCapacityPlan(
                region="us",
                outcome="makes-room",
                workers=2,
                footprint_bytes=GIB,
                footprint_source="estimated",
                memory_known=True,
                memory_budget_bytes=4 * GIB,
                stops=["production/old"],
            ),
            "  capacity us: stops idle deployment production/old to make room (drained, least "
            "recently used first), then starts 2 workers (needs 1.0 GiB, estimated; "
            "0 MiB free of 4.0 GiB)",
        ),
        (
            resources_pb2.RegionCapacityPlan(
                region="eu",
                outcome="until-invoked",
                footprint_bytes=256 * MIB,
                footprint_source="estimated",
                reason="its first request starts a worker, which fits now",
            ),
            "  capacity eu: starts nothing until invoked; its first request starts a worker, "
            "which fits now (needs 256 MiB, estimated; memory not known yet: its agent has not "
            "reported)",
        ),
    ],
)
def test_a_plan_says_per_region_whether_the_workers_fit(
    plan: resources_pb2.RegionCapacityPlan, line: str
) -> None:
    assert capacity_line(plan) == line
    lines = plan_lines("d", "production", resources_pb2.DeploymentPlan(capacity=[plan]))
    assert lines[-1] == line
