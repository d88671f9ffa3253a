"""Table tests of policy resolution: the collision rule, location matching and its errors."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from controlplane.policy import PlacementError, resolve_placement
from meshline.v1.resources_pb2 import Deployment, Environment, Policy, Region
from tests.controlplane.store.builders import location

REGIONS = {"eu": "DE", "fr": "FR", "us": "US", "us2": "US"}


def _regions(names: Sequence[str] = tuple(REGIONS)) -> list[Region]:
    out = []
    for name in names:
        region = Region()
        region.metadata.name = name
        region.spec.country = REGIONS[name]
        out.append(region)
    return out


def _env(policies: Sequence[Policy]) -> Environment:
    env = Environment()
    env.metadata.name = "production"
    env.spec.policies.extend(policies)
    return env


def _dep(policies: Sequence[Policy]) -> Deployment:
    dep = Deployment()
    dep.metadata.name = "mnist"
    dep.spec.environment = "production"
    dep.spec.policies.extend(policies)
    return dep


M = "mandatory"
O = "optional"  # noqa: E741

PLACED = [
    pytest.param([], [], ["eu", "fr", "us", "us2"], id="no-policies-everywhere"),
    pytest.param([], [location(["eu", "us"])], ["eu", "us"], id="deployment-regions"),
    pytest.param([], [location(countries=["US"])], ["us", "us2"], id="deployment-countries"),
    pytest.param([], [location(countries=["de"])], ["eu"], id="countries-ignore-case"),
    pytest.param(
        [], [location(["eu", "us"], ["US"])], ["us"], id="regions-and-countries-both-hold"
    ),
    pytest.param([location(["eu"])], [], ["eu"], id="optional-env-applies-alone"),
    pytest.param([location(["eu"], mode=O)], [], ["eu"], id="explicit-optional-applies-alone"),
    pytest.param(
        [location(["eu"])], [location(["us"])], ["us"], id="optional-env-replaced-by-deployment"
    ),
    pytest.param(
        [location(["eu"], mode=O)],
        [location()],
        ["eu", "fr", "us", "us2"],
        id="empty-deployment-location-lifts-optional",
    ),
    pytest.param([location(["eu", "us"], mode=M)], [], ["eu", "us"], id="mandatory-env-alone"),
    pytest.param(
        [location(["eu", "us"], mode=M)],
        [location(["us", "fr"])],
        ["us"],
        id="mandatory-intersects-deployment-regions",
    ),
    pytest.param(
        [location(countries=["US"], mode=M)],
        [location(["eu", "us", "us2"])],
        ["us", "us2"],
        id="mandatory-countries-intersect-deployment-regions",
    ),
    pytest.param(
        [location(["eu", "us", "fr"], mode=M), location(["fr"], mode=O)],
        [location(["eu", "us"])],
        ["eu", "us"],
        id="mandatory-stays-optional-goes",
    ),
    pytest.param(
        [location(["eu", "us", "fr"], mode=M), location(["fr", "us"], mode=O)],
        [],
        ["fr", "us"],
        id="mandatory-and-optional-both-apply-without-deployment-policy",
    ),
    pytest.param(
        [location(mode=M)], [location(["fr"])], ["fr"], id="empty-mandatory-restricts-nothing"
    ),
]


@pytest.mark.parametrize(("env_policies", "dep_policies", "expected"), PLACED)
def test_placement(
    env_policies: list[Policy], dep_policies: list[Policy], expected: list[str]
) -> None:
    placement = resolve_placement(_dep(dep_policies), _env(env_policies), _regions())
    assert list(placement.regions) == expected
    assert sorted([*placement.regions, *(e.region for e in placement.excluded)]) == sorted(REGIONS)


FAILED = [
    pytest.param(
        [location(["eu"], mode=M)],
        [location(["us"])],
        _regions(),
        "environment 'production' mandatory location {regions: [eu]} and "
        "deployment 'mnist' location {regions: [us]} allow no common region",
        id="mandatory-region-vs-deployment-region",
    ),
    pytest.param(
        [location(countries=["DE"], mode=M)],
        [location(["us"])],
        _regions(),
        "environment 'production' mandatory location {countries: [DE]} and "
        "deployment 'mnist' location {regions: [us]} allow no common region",
        id="mandatory-country-vs-deployment-region",
    ),
    pytest.param(
        [location(["eu", "us"], mode=M), location(countries=["US"], mode=M)],
        [location(["eu", "fr"])],
        _regions(),
        "environment 'production' mandatory location {countries: [US]} and "
        "deployment 'mnist' location {regions: [eu, fr]} allow no common region",
        id="names-the-colliding-pair-only",
    ),
    pytest.param(
        [],
        [location(countries=["JP"])],
        _regions(),
        "no registered region satisfies deployment 'mnist' location {countries: [JP]}",
        id="nothing-matches-a-country",
    ),
    pytest.param(
        [location(countries=["JP"], mode=O)],
        [],
        _regions(),
        "no registered region satisfies environment 'production' optional location "
        "{countries: [JP]}",
        id="nothing-matches-an-optional-env-policy",
    ),
    pytest.param(
        [],
        [location(["mars"])],
        _regions(),
        "deployment 'mnist' location {regions: [mars]} names unknown region 'mars'",
        id="unknown-region-in-deployment",
    ),
    pytest.param(
        [location(["eu", "mars"], mode=M)],
        [],
        _regions(),
        "names unknown region 'mars' (registered: eu, fr, us, us2)",
        id="unknown-region-in-environment",
    ),
    pytest.param([], [], [], "no region is registered", id="no-regions-at-all"),
    pytest.param(
        [Policy(mode=M)], [], _regions(), "has a policy with no rule set", id="policy-without-rule"
    ),
    pytest.param(
        [location(["eu"], mode="always")],
        [],
        _regions(),
        "unknown mode 'always'",
        id="unknown-mode",
    ),
]


@pytest.mark.parametrize(("env_policies", "dep_policies", "regions", "message"), FAILED)
def test_placement_errors(
    env_policies: list[Policy], dep_policies: list[Policy], regions: list[Region], message: str
) -> None:
    with pytest.raises(PlacementError) as caught:
        resolve_placement(_dep(dep_policies), _env(env_policies), regions)
    assert message in str(caught.value)


def test_an_optional_policy_naming_an_unknown_region_is_fine_once_replaced() -> None:
    placement = resolve_placement(_dep([location(["us"])]), _env([location(["mars"])]), _regions())
    assert placement.regions == ("us",)
    assert [p.describe() for p in placement.overridden] == [
        "environment 'production' optional location {regions: [mars]} "
        "(overridden by deployment 'mnist')"
    ]


def test_excluded_regions_name_the_policy_that_excluded_them() -> None:
    placement = resolve_placement(
        _dep([location(["eu", "us"])]),
        _env([location(countries=["US", "DE"], mode=M)]),
        _regions(),
    )
    assert placement.regions == ("eu", "us")
    assert [e.describe() for e in placement.excluded] == [
        "fr: excluded by environment 'production' mandatory location {countries: [US, DE]}",
        "us2: excluded by deployment 'mnist' location {regions: [eu, us]}",
    ]
    assert placement.excluded_by("eu") is None
    excluded = placement.excluded_by("us2")
    assert excluded is not None and excluded.origin == "deployment"
    assert [p.describe() for p in placement.applied] == [
        "environment 'production' mandatory location {countries: [US, DE]}",
        "deployment 'mnist' location {regions: [eu, us]}",
    ]
    assert placement.overridden == ()
