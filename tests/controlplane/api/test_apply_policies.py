"""Apply resolves every deployment: impossible combinations are refused whole, naming both sides.

World (see policy_world): eu (DE, EU; cpu c5, gpu a100), us (US, NA; cpu c5, m5), environment
production, model mnist v1-v3, stored deployment mnist (1 replica, no policies).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.api import ApplyError, apply_resources, plan_apply
from controlplane.store import Store
from meshline.v1.api_pb2 import Resource
from tests.controlplane.api.policy_world import dep, env, errors_of, split, world
from tests.controlplane.store.builders import deployment, environment, policy, region


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with world(tmp_path) as s:
        yield s


REGISTERED = "(registered: eu (DE), us (US))"
WITH_APAC = "(registered: apac (JP), eu (DE), us (US))"
PROD = "environment 'production' mandatory"


def _prod(*rules: dict[str, object]) -> Resource:
    return env(*rules, name="production")


IMPOSSIBLE = [
    pytest.param(
        [_prod({"flavor": {"cpu": ["c5"]}}), dep({"flavor": {"gpu": ["a100"]}})],
        f"{PROD} flavor {{cpu: [c5]}} and deployment 'd' flavor {{gpu: [a100]}} collide: a "
        "deployment uses CPU flavors or GPU flavors, never both",
        id="mandatory-cpu-and-deployment-gpu",
    ),
    pytest.param(
        [dep({"location": {"regions": ["us"]}}, {"flavor": {"gpu": ["a100"]}})],
        "deployment 'd' location {regions: [us]} and deployment 'd' flavor {gpu: [a100]} allow "
        f"no common region {REGISTERED}",
        id="location-and-flavor",
    ),
    pytest.param(
        [_prod({"location": {"continents": ["NA"]}}), dep({"flavor": {"gpu": ["a100"]}})],
        f"{PROD} location {{continents: [NA]}} and deployment 'd' flavor {{gpu: [a100]}} allow "
        f"no common region {REGISTERED}",
        id="mandatory-continent-and-deployment-flavor",
    ),
    pytest.param(
        [
            _prod({"location": {"deny": {"regions": ["eu"]}}}),
            dep({"location": {"regions": ["eu"]}}),
        ],
        f"{PROD} location {{deny: {{regions: [eu]}}}} and deployment 'd' location "
        f"{{regions: [eu]}} allow no common region {REGISTERED}",
        id="mandatory-deny-and-deployment-region",
    ),
    pytest.param(
        [
            _prod({"flavor": {"cpu": ["c5", "t3"]}}),
            dep({"location": {"regions": ["eu"]}}, {"flavor": {"cpu": ["t3", "m5"]}}),
            region("eu", "DE", "EU", cpu=["c5", "m5"], gpu=["a100"]),
        ],
        # Each allows eu (c5, m5) on its own, but no region offers t3, the one both allow.
        f"{PROD} flavor {{cpu: [c5, t3]}} and deployment 'd' flavor {{cpu: [t3, m5]}} allow no "
        f"common region {REGISTERED}",
        id="flavor-sets-share-no-flavor-the-region-offers",
    ),
    pytest.param(
        [
            region("us", "US", "NA", cpu=["c5", "m5"], max_replicas=1),
            dep({"location": {"regions": ["eu", "us"]}}, {"flavor": {"cpu": ["m5"]}}),
        ],
        # The stored deployment is older: it keeps its replica in us.
        "deployment 'd' location {regions: [eu, us]} and deployment 'd' flavor {cpu: [m5]} "
        "allow only regions without room: region 'us' capacity (max_replicas 1, 0 free, "
        "this deployment needs 1)",
        id="location-flavor-and-capacity",
    ),
    pytest.param(
        [
            region("apac", "JP", "AS", max_replicas=2),
            dep(
                {"location": {"regions": ["apac"]}},
                {
                    "traffic": {
                        "split": split(v1=90, v2=10),
                        "mirror": {"version": "v3", "percent": 5},
                    }
                },
            ),
        ],
        # Own version, split leg v2 and mirror v3: 3 tracks. The older stored mnist (no
        # policies) takes one of apac's two replicas first.
        "deployment 'd' location {regions: [apac]} allow only regions without room: region "
        "'apac' capacity (max_replicas 2, 1 free, this deployment needs 3)",
        id="replicas-times-tracks-over-capacity",
    ),
]


@pytest.mark.parametrize(("docs", "message"), IMPOSSIBLE)
def test_impossible_combinations_are_refused_whole(
    store: Store, docs: list[Resource], message: str
) -> None:
    before = store.snapshot()
    docs = [*docs, environment("qa")]  # a good document: not stored either
    with pytest.raises(ApplyError) as caught:
        apply_resources(store, docs)
    position = next(i for i, d in enumerate(docs) if d.WhichOneof("kind") == "deployment")
    [error] = caught.value.errors
    assert (error.document_index, error.kind, error.name, error.field_path) == (
        position,
        "Deployment",
        "d",
        "spec.policies",
    )
    assert str(error) == f"deployment 'd' in environment 'production': spec.policies: {message}"
    # Nothing half-applied: not the region, not the environment, not the deployment.
    assert store.snapshot() == before


def test_a_change_that_strands_a_stored_deployment_is_refused_whole(store: Store) -> None:
    before = store.snapshot()
    docs = [region("apac", "JP", "AS"), _prod({"flavor": {"gpu": ["h100"]}})]
    with pytest.raises(ApplyError) as caught:
        apply_resources(store, docs)
    [error] = caught.value.errors
    # Blamed on the environment document that strands it, so the CLI names file and document.
    assert (error.document_index, error.kind, error.name) == (1, "Environment", "production")
    assert str(error) == (
        "environment 'production': spec.policies: this apply would leave deployment 'mnist' "
        f"running nowhere: no registered region satisfies {PROD} flavor {{gpu: [h100]}} "
        f"{WITH_APAC}"
    )
    assert store.snapshot() == before


def test_a_bad_policy_and_a_good_document_store_nothing(store: Store) -> None:
    before = store.snapshot()
    docs = [
        region("apac", "JP", "AS"),
        dep({"routing": {"strategy": "ring_hash"}}),
        env({"traffic": {"split": split(v1=100)}}),
    ]
    with pytest.raises(ApplyError) as caught:
        apply_resources(store, docs)
    assert [(e.document_index, e.field_path) for e in caught.value.errors] == [
        (1, "spec.policies[0].routing.hash_header"),
        (2, "spec.policies[0].traffic"),
    ]
    assert store.snapshot() == before


def _two_in_eu(store: Store) -> None:
    """zeta, then (a moment later) alpha: both only in eu."""
    for name in ("zeta", "alpha"):
        time.sleep(0.005)  # created_at has millisecond resolution
        apply_resources(
            store,
            [deployment(name, "mnist", "v1", policies=[policy({"location": {"regions": ["eu"]}})])],
        )


def test_capacity_goes_to_the_older_stored_deployment(store: Store) -> None:
    _two_in_eu(store)
    # mnist (everywhere) is older still: eu room for two leaves one for zeta, none for alpha.
    [error] = errors_of(store, [region("eu", "DE", "EU", cpu=["c5"], gpu=["a100"], max_replicas=2)])
    assert (error.document_index, error.kind, error.name) == (0, "Region", "eu")
    assert error.message == (
        "this apply would leave deployment 'alpha' in environment 'production' running nowhere: "
        "deployment 'alpha' location {regions: [eu]} "
        "allow only regions without room: region 'eu' capacity (max_replicas 2, 0 free, this "
        "deployment needs 1)"
    )
    # Blamed on the region document that strands it, not merely the first region changed.
    us_again = region("us", "US", "NA", cpu=["c5", "m5"], max_replicas=1)
    eu_full = region("eu", "DE", "EU", cpu=["c5"], gpu=["a100"], max_replicas=2)
    [error] = errors_of(store, [us_again, eu_full])
    assert (error.document_index, error.kind, error.name) == (1, "Region", "eu")


def test_an_update_keeps_its_place_in_line_for_capacity(store: Store) -> None:
    _two_in_eu(store)
    full = region("eu", "DE", "EU", cpu=["c5"], gpu=["a100"], max_replicas=2)
    # zeta is updated in the same request: it stays older than alpha, alpha still loses.
    update = deployment("zeta", "mnist", "v2", policies=[policy({"location": {"regions": ["eu"]}})])
    assert [(e.document_index, e.name) for e in errors_of(store, [full, update])] == [(0, "eu")]
    # Room for all three: every deployment is placed.
    roomy = region("eu", "DE", "EU", cpu=["c5"], gpu=["a100"], max_replicas=3)
    plan = plan_apply([roomy, update], store.snapshot())
    assert sorted(name for _, name in plan.resolved) == ["alpha", "mnist", "zeta"]


def test_single_valued_environment_policies_in_the_plan(store: Store) -> None:
    plan = plan_apply(
        [
            _prod(
                {"routing": {"strategy": "least_request", "timeout_s": 5}},
                {"failover": {"disabled": True}},
            ),
            env({"offload": {"max_inflight_per_replica": 4}}, name="staging", mode="optional"),
            dep(
                {"routing": {"strategy": "random", "retries": {"attempts": 5}}},
                {"failover": {"regions": ["us"]}},
                {"offload": {"max_inflight_per_replica": 8, "max_percent": 20}},
            ),
            deployment(
                "s",
                "mnist",
                "v1",
                environment_name="staging",
                policies=[policy({"offload": {"max_inflight_per_replica": 2}})],
            ),
        ],
        store.snapshot(),
    )
    d = plan.resolved[("production", "d")]
    assert (d.routing.strategy, d.routing.timeout_s, d.routing.retry.num_retries) == (
        "least_request",
        5.0,
        3,
    )
    assert (d.failover.enabled, d.failover.regions) == (False, ())
    assert (d.offload.max_inflight_per_replica, d.offload.max_percent) == (8, 20)
    assert [(o.policy.rule_type, o.by.source) for o in d.overridden] == [
        ("routing", PROD),
        ("failover", PROD),
    ]
    s = plan.resolved[("staging", "s")]
    assert (s.offload.max_inflight_per_replica, s.offload.max_percent) == (2, 50)
    assert [o.describe() for o in s.overridden] == [
        "environment 'staging' optional offload {max_inflight_per_replica: 4} "
        "(overridden by deployment 's')"
    ]


def test_flavors_and_places_reach_the_apply_result(store: Store) -> None:
    docs = [
        region("apac", "JP", "AS", gpu=["h100", "a100"]),
        _prod({"location": {"deny": {"countries": ["US"]}}}),
        dep({"flavor": {"gpu": ["a100", "h100"]}}),
    ]
    plan = plan_apply(docs, store.snapshot())
    placement = plan.resolved[("production", "d")].placement
    assert placement.regions == ("apac", "eu")
    assert {r: placement.flavor(r) for r in placement.regions} == {
        "apac": "gpu:a100",
        "eu": "gpu:a100",
    }
    assert plan.resolved[("production", "mnist")].placement.regions == ("apac", "eu")
    results = apply_resources(store, docs)
    assert [list(r.placement) for r in results if r.name == "d"] == [["apac", "eu"]]
    assert store.get_deployment("production", "d").spec.policies[0].flavor.gpu == ["a100", "h100"]
