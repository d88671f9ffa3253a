"""Table tests of region capacity: replicas times tracks per region, shared out oldest first."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.policy import PlacementError, resolve_deployment, resolve_network
from meshline.v1.resources_pb2 import Deployment, Policy
from tests.controlplane.policy.world import ALL, dep, env, regions, rule

EU_WEST = {"location": {"regions": ["eu-west"]}}
SPLIT = {"traffic": {"split": [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}]}}
MIRROR = {"traffic": {"mirror": {"version": "v3", "percent": 5}}}
SPLIT_AND_MIRROR = {"traffic": {**SPLIT["traffic"], **MIRROR["traffic"]}}
MIRROR_A_LEG = {
    "traffic": {**SPLIT["traffic"], "mirror": {"version": "v2", "percent": 5}},
}


def _needs(replicas: int, *policies: dict[str, Any]) -> tuple[int, list[Policy]]:
    return replicas, [rule(EU_WEST), *(rule(p) for p in policies)]


CAPACITY = [
    # (replicas, policies), eu-west max_replicas, placed?
    pytest.param(*_needs(2), 2, True, id="exactly-full"),
    pytest.param(*_needs(3), 2, False, id="one-over"),
    pytest.param(*_needs(64), 0, True, id="zero-is-unlimited"),
    pytest.param(*_needs(0), 1, True, id="scaled-to-zero-needs-nothing"),
    pytest.param(*_needs(1, SPLIT), 2, True, id="split-two-tracks-fit"),
    pytest.param(*_needs(2, SPLIT), 3, False, id="split-doubles-replicas"),
    pytest.param(*_needs(1, MIRROR), 1, False, id="mirror-is-a-track"),
    pytest.param(*_needs(1, SPLIT_AND_MIRROR), 3, True, id="own-split-mirror-fit"),
    pytest.param(*_needs(1, SPLIT_AND_MIRROR), 2, False, id="own-split-mirror-three-tracks"),
    pytest.param(*_needs(1, MIRROR_A_LEG), 2, True, id="mirror-on-a-leg-adds-no-track"),
]


@pytest.mark.parametrize(("replicas", "policies", "max_replicas", "placed"), CAPACITY)
def test_capacity_counts_replicas_times_tracks(
    replicas: int, policies: list[Policy], max_replicas: int, placed: bool
) -> None:
    world = regions({"eu-west": max_replicas})
    network = resolve_network([dep(policies, replicas=replicas)], {"production": env()}, world)
    if placed:
        assert network.errors == {}
        assert network.deployments[("production", "mnist")].placement.regions == ("eu-west",)
    else:
        assert network.deployments == {}
        message = network.errors[("production", "mnist")]
        assert message.startswith(
            "deployment 'mnist' location {regions: [eu-west]} allow only regions without room: "
            f"region 'eu-west' capacity (max_replicas {max_replicas}, {max_replicas} free, "
            "this deployment needs "
        )


def test_a_full_region_is_excluded_with_its_capacity_as_reason() -> None:
    world = regions({"eu-west": 2, "us-east": 4})
    resolved = resolve_deployment(
        dep([rule(SPLIT_AND_MIRROR)]), env(), world, {"eu-west": 2, "us-east": 3}
    )
    assert len(resolved.tracks) == 3
    assert resolved.placement.regions == tuple(r for r in ALL if r != "eu-west")
    [full] = resolved.placement.excluded
    assert full.policy is None
    assert full.describe() == (
        "eu-west: excluded by region 'eu-west' capacity (max_replicas 2, 2 free, "
        "this deployment needs 3)"
    )


def test_without_free_replicas_capacity_is_not_tested() -> None:
    resolved = resolve_deployment(dep(replicas=5), env(), regions({"eu-west": 1}))
    assert resolved.placement.regions == ALL


def test_location_flavor_and_capacity_leave_nowhere() -> None:
    policies = [
        rule({"location": {"regions": ["eu-west", "us-east"]}}),
        rule({"flavor": {"cpu": ["m5"]}}),
    ]
    world = regions({"eu-west": 1, "us-east": 1})
    with pytest.raises(PlacementError) as caught:
        resolve_deployment(dep(policies, replicas=2), env(), world, {"eu-west": 1, "us-east": 1})
    assert str(caught.value) == (
        "deployment 'mnist' location {regions: [eu-west, us-east]} and deployment 'mnist' "
        "flavor {cpu: [m5]} allow only regions without room: region 'eu-west' capacity "
        "(max_replicas 1, 1 free, this deployment needs 2); region 'us-east' capacity "
        "(max_replicas 1, 1 free, this deployment needs 2)"
    )


def _regions_of(network: Any, name: str) -> tuple[str, ...]:
    regions_: tuple[str, ...] = network.deployments[("production", name)].placement.regions
    return regions_


EU_ONLY = [rule(EU_WEST)]
EARLY, LATE = "2024-01-01T00:00:00.000Z", "2024-06-01T00:00:00.000Z"

ORDER = [
    pytest.param(
        [dep(EU_ONLY, "zeta", created_at=EARLY), dep(EU_ONLY, "alpha", created_at=LATE)],
        "zeta",
        "alpha",
        id="older-first-whatever-the-name",
    ),
    pytest.param(
        [dep(EU_ONLY, "alpha", created_at=LATE), dep(EU_ONLY, "zeta", created_at=EARLY)],
        "zeta",
        "alpha",
        id="older-first-whatever-the-list-order",
    ),
    pytest.param(
        [dep(EU_ONLY, "alpha"), dep(EU_ONLY, "zeta", created_at=LATE)],
        "zeta",
        "alpha",
        id="not-yet-created-comes-last",
    ),
    pytest.param(
        [dep(EU_ONLY, "zeta", created_at=EARLY), dep(EU_ONLY, "alpha", created_at=EARLY)],
        "alpha",
        "zeta",
        id="same-time-by-name",
    ),
]


@pytest.mark.parametrize(("deployments", "winner", "loser"), ORDER)
def test_capacity_goes_to_older_deployments(
    deployments: list[Deployment], winner: str, loser: str
) -> None:
    world = regions({"eu-west": 1})
    network = resolve_network(deployments, {"production": env()}, world)
    assert list(network.deployments) == [("production", winner)]
    assert (
        "region 'eu-west' capacity (max_replicas 1, 0 free, this deployment needs 1)"
        in (network.errors[("production", loser)])
    )


def test_a_newer_deployment_takes_what_is_left() -> None:
    split = [rule(SPLIT)]  # two tracks: 2 replicas need 4 per region
    deployments = [
        dep(split, "old", replicas=2, created_at=EARLY),
        dep([], "new", replicas=3, created_at=LATE),
        dep([], "tiny", replicas=1, created_at=LATE),
    ]
    world = regions({"eu-west": 6, "us-east": 4, "us-west": 7})
    network = resolve_network(deployments, {"production": env()}, world)
    assert network.errors == {}
    assert _regions_of(network, "old") == ALL
    # eu-west keeps 2, us-east 0, us-west 3: "new" (3) fits us-west, "tiny" (1) eu-west.
    assert _regions_of(network, "new") == ("ap-tokyo", "de-north", "eu-central", "us-west")
    assert _regions_of(network, "tiny") == ("ap-tokyo", "de-north", "eu-central", "eu-west")
    excluded = network.deployments[("production", "tiny")].placement.excluded
    assert [e.describe() for e in excluded] == [
        "us-east: excluded by region 'us-east' capacity (max_replicas 4, 0 free, "
        "this deployment needs 1)",
        "us-west: excluded by region 'us-west' capacity (max_replicas 7, 0 free, "
        "this deployment needs 1)",
    ]


def test_a_deployment_that_fits_nowhere_gets_an_error_and_uses_nothing() -> None:
    deployments = [
        dep(EU_ONLY, "old", replicas=2, created_at=EARLY),
        dep(EU_ONLY, "big", replicas=2, created_at=LATE),
        dep(EU_ONLY, "small", replicas=1, created_at=LATE),
    ]
    network = resolve_network(deployments, {"production": env()}, regions({"eu-west": 3}))
    assert sorted(network.deployments) == [("production", "old"), ("production", "small")]
    assert list(network.errors) == [("production", "big")]
    assert (
        "(max_replicas 3, 1 free, this deployment needs 2)" in network.errors[("production", "big")]
    )


def test_a_missing_environment_is_an_error_of_that_deployment_only() -> None:
    deployments = [dep(name="lost", environment="staging"), dep(name="fine")]
    network = resolve_network(deployments, {"production": env()}, regions())
    assert network.errors == {("staging", "lost"): "environment 'staging' does not exist"}
    assert list(network.deployments) == [("production", "fine")]


def test_collisions_are_reported_per_deployment() -> None:
    environments = {"production": env([rule({"flavor": {"cpu": ["c5"]}}, "mandatory")])}
    deployments = [dep([rule({"flavor": {"gpu": ["a100"]}})], "gpu"), dep(name="cpu")]
    network = resolve_network(deployments, environments, regions())
    assert (
        "collide: a deployment uses CPU flavors or GPU flavors"
        in (network.errors[("production", "gpu")])
    )
    assert network.deployments[("production", "cpu")].placement.flavor("us-west") == "cpu:c5"
