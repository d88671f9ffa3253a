"""Table tests of the set-valued policies: location (continents, deny) and flavor (CPU xor GPU).

Every applying location and flavor policy restricts, so they intersect; deny wins over any
allow list; a deployment runs on CPU flavors or GPU flavors, never both.
"""

from __future__ import annotations

import pytest

from controlplane.policy import PlacementError, resolve_placement
from meshline.v1.resources_pb2 import Policy
from tests.controlplane.policy.world import ALL, M, O, dep, env, regions, rule

EU = ("de-north", "eu-central", "eu-west")


def _loc(**fields: object) -> dict[str, object]:
    return {"location": fields}


LOCATIONS = [
    pytest.param([], [rule(_loc(continents=["EU"]))], EU, id="continents"),
    pytest.param([], [rule(_loc(continents=["eu", "as"]))], ("ap-tokyo", *EU), id="continents-ci"),
    pytest.param(
        [], [rule(_loc(continents=["EU"], countries=["DE"]))], EU[:2], id="continent-and-country"
    ),
    pytest.param([], [rule(_loc(deny={"countries": ["US"]}))], ("ap-tokyo", *EU), id="deny-only"),
    pytest.param(
        [],
        [rule(_loc(deny={"continents": ["eu", "NA"]}))],
        ("ap-tokyo",),
        id="deny-continents-ignore-case",
    ),
    pytest.param(
        [],
        [rule(_loc(continents=["EU"], deny={"regions": ["eu-west"]}))],
        EU[:2],
        id="deny-region-inside-allowed-continent",
    ),
    pytest.param(
        [],
        [rule(_loc(regions=["eu-west", "us-east"], deny={"countries": ["us"]}))],
        ("eu-west",),
        id="deny-wins-over-listed-region",
    ),
    pytest.param(
        [rule(_loc(deny={"continents": ["NA"]}), M)],
        [rule(_loc(continents=["NA", "AS"]))],
        ("ap-tokyo",),
        id="mandatory-deny-intersects-deployment-allow",
    ),
    pytest.param(
        [rule(_loc(deny={"continents": ["NA"]}), O)],
        [rule(_loc(continents=["NA", "AS"]))],
        ("ap-tokyo", "us-east", "us-west"),
        id="optional-deny-replaced-by-deployment",
    ),
    pytest.param(
        [rule(_loc(continents=["EU"]), M)],
        [rule(_loc(deny={"countries": ["DE"]}))],
        ("eu-west",),
        id="deployment-deny-narrows-mandatory-continent",
    ),
]


@pytest.mark.parametrize(("env_policies", "dep_policies", "expected"), LOCATIONS)
def test_location(
    env_policies: list[Policy], dep_policies: list[Policy], expected: tuple[str, ...]
) -> None:
    placement = resolve_placement(dep(dep_policies), env(env_policies), regions())
    assert placement.regions == expected
    assert sorted([*placement.regions, *(e.region for e in placement.excluded)]) == list(ALL)


def test_a_denied_region_names_the_deny_policy() -> None:
    placement = resolve_placement(
        dep([rule(_loc(deny={"regions": ["eu-west"]}))]),
        env([rule(_loc(continents=["EU"]), M)]),
        regions(),
    )
    assert [e.describe() for e in placement.excluded] == [
        "ap-tokyo: excluded by environment 'production' mandatory location {continents: [EU]}",
        "eu-west: excluded by deployment 'mnist' location {deny: {regions: [eu-west]}}",
        "us-east: excluded by environment 'production' mandatory location {continents: [EU]}",
        "us-west: excluded by environment 'production' mandatory location {continents: [EU]}",
    ]


def _cpu(*names: str, mode: str = "") -> Policy:
    return rule({"flavor": {"cpu": list(names)}}, mode)


def _gpu(*names: str, mode: str = "") -> Policy:
    return rule({"flavor": {"gpu": list(names)}}, mode)


FLAVORS = [
    pytest.param([], [], {name: "" for name in ALL}, id="no-flavor-policy-no-flavor"),
    pytest.param(
        [], [_gpu("a100")], {"eu-west": "gpu:a100", "us-east": "gpu:a100"}, id="one-gpu-type"
    ),
    pytest.param(
        [],
        [_gpu("h100", "a100")],
        {
            "ap-tokyo": "gpu:h100",
            "de-north": "gpu:h100",
            "eu-west": "gpu:a100",
            "us-east": "gpu:a100",
        },
        id="gpu-types-first-offered-by-name",
    ),
    pytest.param(
        [],
        [_cpu("c5")],
        {"eu-central": "cpu:c5", "eu-west": "cpu:c5", "us-west": "cpu:c5"},
        id="cpu-type",
    ),
    pytest.param(
        [_cpu("c5", "m5", mode=M)],
        [_cpu("m5", "t3")],
        {"eu-west": "cpu:m5", "us-east": "cpu:m5"},
        id="mandatory-cpu-intersects-deployment-cpu",
    ),
    pytest.param(
        [_cpu("c5", "t3", mode=M)],
        [_cpu("t3", "m5")],
        {"us-west": "cpu:t3"},
        # eu-west offers c5 (env) and m5 (deployment), but no flavor both allow.
        id="intersection-is-of-flavors-not-of-regions",
    ),
    pytest.param(
        [_gpu("h100", mode=O)],
        [_cpu("t3")],
        {"us-west": "cpu:t3"},
        id="optional-env-gpu-replaced-by-deployment-cpu",
    ),
    pytest.param(
        [_gpu("a100", "h100", mode=M)],
        [rule(_loc(continents=["EU"]))],
        {"de-north": "gpu:h100", "eu-west": "gpu:a100"},
        id="mandatory-flavor-and-deployment-location",
    ),
    pytest.param(
        [rule(_loc(deny={"regions": ["eu-west"]}), M)],
        [_gpu("a100")],
        {"us-east": "gpu:a100"},
        id="deny-and-flavor",
    ),
]


@pytest.mark.parametrize(("env_policies", "dep_policies", "expected"), FLAVORS)
def test_flavor(
    env_policies: list[Policy], dep_policies: list[Policy], expected: dict[str, str]
) -> None:
    placement = resolve_placement(dep(dep_policies), env(env_policies), regions())
    assert placement.regions == tuple(expected)
    assert {name: placement.flavor(name) for name in placement.regions} == expected
    assert all(placement.flavor(e.region) == "" for e in placement.excluded)


def test_a_region_without_a_common_flavor_names_every_flavor_policy() -> None:
    placement = resolve_placement(
        dep([_cpu("t3", "m5")]), env([_cpu("c5", "t3", mode=M)]), regions()
    )
    reasons = {e.region: e.describe() for e in placement.excluded}
    assert reasons["eu-west"] == (
        "eu-west: excluded by environment 'production' mandatory flavor {cpu: [c5, t3]} and "
        "deployment 'mnist' flavor {cpu: [t3, m5]} together (the region offers no flavor "
        "that all of them allow)"
    )
    assert (
        reasons["eu-central"] == "eu-central: excluded by deployment 'mnist' flavor {cpu: [t3, m5]}"
    )


REGISTERED = (
    "(registered: ap-tokyo (JP), de-north (DE), eu-central (DE), eu-west (FR), us-east (US), "
    "us-west (US))"
)

FAILED = [
    pytest.param(
        [],
        [rule({"flavor": {"cpu": ["c5"], "gpu": ["a100"]}})],
        "deployment 'mnist' flavor {cpu: [c5], gpu: [a100]} lists CPU and GPU flavors: "
        "a deployment uses one or the other",
        id="one-policy-cpu-and-gpu",
    ),
    pytest.param(
        [_cpu("c5", mode=M)],
        [_gpu("a100")],
        "environment 'production' mandatory flavor {cpu: [c5]} and deployment 'mnist' flavor "
        "{gpu: [a100]} collide: a deployment uses CPU flavors or GPU flavors, never both",
        id="mandatory-cpu-vs-deployment-gpu",
    ),
    pytest.param(
        [_gpu("h100", mode=M)],
        [_cpu("c5")],
        "deployment 'mnist' flavor {cpu: [c5]} and environment 'production' mandatory flavor "
        "{gpu: [h100]} collide",
        id="mandatory-gpu-vs-deployment-cpu",
    ),
    pytest.param(
        [],
        [_gpu("tpu")],
        f"no registered region satisfies deployment 'mnist' flavor {{gpu: [tpu]}} {REGISTERED}",
        id="flavor-offered-nowhere",
    ),
    pytest.param(
        [],
        [rule(_loc(regions=["eu-central"])), _gpu("a100")],
        "deployment 'mnist' location {regions: [eu-central]} and deployment 'mnist' flavor "
        f"{{gpu: [a100]}} allow no common region {REGISTERED}",
        id="location-and-flavor-empty",
    ),
    pytest.param(
        [_cpu("c5", "t3", mode=M)],
        [rule(_loc(regions=["eu-west", "eu-central"])), _cpu("t3", "m5")],
        # Any two of the three share a region; all three share none (eu-west offers c5
        # and m5, but not one flavor both flavor policies allow).
        "environment 'production' mandatory flavor {cpu: [c5, t3]} and deployment 'mnist' "
        "location {regions: [eu-west, eu-central]} and deployment 'mnist' flavor "
        "{cpu: [t3, m5]} allow no common region",
        id="flavor-sets-empty-where-allowed",
    ),
    pytest.param(
        [rule(_loc(continents=["NA"]), M)],
        [rule(_loc(regions=["eu-west"]))],
        "environment 'production' mandatory location {continents: [NA]} and deployment 'mnist' "
        "location {regions: [eu-west]} allow no common region",
        id="mandatory-continent-vs-deployment-region",
    ),
    pytest.param(
        [rule(_loc(deny={"regions": ["us-east"]}), M)],
        [rule(_loc(regions=["us-east"]))],
        "environment 'production' mandatory location {deny: {regions: [us-east]}} and "
        "deployment 'mnist' location {regions: [us-east]} allow no common region",
        id="mandatory-deny-vs-deployment-region",
    ),
    pytest.param(
        [],
        [rule(_loc(continents=["OC"]))],
        "no registered region satisfies deployment 'mnist' location {continents: [OC]}",
        id="continent-without-regions",
    ),
    pytest.param(
        [],
        [rule(_loc(countries=["DE"], deny={"continents": ["EU"]}))],
        "no registered region satisfies deployment 'mnist' location "
        "{countries: [DE], deny: {continents: [EU]}}",
        id="deny-takes-every-allowed-region",
    ),
]


@pytest.mark.parametrize(("env_policies", "dep_policies", "message"), FAILED)
def test_placement_errors(
    env_policies: list[Policy], dep_policies: list[Policy], message: str
) -> None:
    with pytest.raises(PlacementError) as caught:
        resolve_placement(dep(dep_policies), env(env_policies), regions())
    assert message in str(caught.value)


UNKNOWN = [
    pytest.param({"location": {"deny": {"regions": ["mars"]}}}, "location", id="deny-regions"),
    pytest.param(
        {"routing": {"region_preference": "ordered", "region_order": ["eu-west", "mars"]}},
        "routing",
        id="routing-region-order",
    ),
    pytest.param({"failover": {"regions": ["mars"]}}, "failover", id="failover-regions"),
    pytest.param(
        {"offload": {"max_inflight_per_replica": 1, "regions": ["mars"]}},
        "offload",
        id="offload-regions",
    ),
]


@pytest.mark.parametrize(("yaml_form", "kind"), UNKNOWN)
def test_an_applying_policy_naming_an_unknown_region(
    yaml_form: dict[str, object], kind: str
) -> None:
    with pytest.raises(PlacementError) as caught:
        resolve_placement(dep([rule(yaml_form)]), env(), regions())
    message = str(caught.value)
    assert message.startswith(f"deployment 'mnist' {kind} {{")
    assert message.endswith(f"names unknown region 'mars' (registered: {', '.join(ALL)})")
    # Replaced by the deployment's own, an optional environment policy names nothing.
    replaced = resolve_placement(dep([rule({kind: {}})]), env([rule(yaml_form, O)]), regions())
    assert replaced.regions == ALL
