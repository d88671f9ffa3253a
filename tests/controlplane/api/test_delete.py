"""Delete of many resources: every problem found first, then all of them deleted or none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.api.delete import DeleteRefusedError, delete_resources, plan_delete
from controlplane.store import ResourceKey, Store
from tests.controlplane.store.builders import (
    deployment,
    environment,
    location,
    model,
    model_file,
    region,
)

DEP = ResourceKey("Deployment", "mnist", "production")
DEP_EU = ResourceKey("Deployment", "mnist-eu", "production")
DEP_STAGING = ResourceKey("Deployment", "mnist", "staging")
MODEL = ResourceKey("Model", "mnist")
STAGING = ResourceKey("Environment", "staging")
EU = ResourceKey("Region", "eu")
US = ResourceKey("Region", "us")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    artifact = model_file(tmp_path)
    with Store.open(tmp_path / "store.db") as s:
        s.apply(
            [
                region("eu", "DE"),
                region("us", "US"),
                environment("production"),
                environment("staging"),
                model("mnist", [("v1", artifact)]),
                deployment("mnist", "mnist", "v1"),
                deployment("mnist-eu", "mnist", "v1", policies=[location(["eu"])]),
                deployment("mnist", "mnist", "v1", environment_name="staging"),
            ]
        )
        yield s


@pytest.mark.parametrize(
    ("targets", "order"),
    [
        ([DEP], [DEP]),
        # a model and every deployment using it, named model first: deployments go first
        ([MODEL, DEP_STAGING, DEP, DEP_EU], [DEP_STAGING, DEP, DEP_EU, MODEL]),
        ([STAGING, DEP_STAGING], [DEP_STAGING, STAGING]),
        # a region named by a policy can go with the deployment whose policy names it
        ([EU, US, DEP_EU, DEP, DEP_STAGING], [DEP_EU, DEP, DEP_STAGING, EU, US]),
        # a deployment given without environment is the production one, named twice once
        ([ResourceKey("Deployment", "mnist"), DEP], [DEP]),
    ],
)
def test_what_may_go_and_in_which_order(
    store: Store, targets: list[ResourceKey], order: list[ResourceKey]
) -> None:
    assert list(plan_delete(targets, store.snapshot()).present) == order


@pytest.mark.parametrize(
    ("targets", "problems", "only_missing"),
    [
        (
            [MODEL, DEP],
            [
                "model 'mnist' is used by deployment 'mnist-eu' in environment 'production', "
                "deployment 'mnist' in environment 'staging'; delete or change those first"
            ],
            False,
        ),
        (
            [STAGING, EU, ResourceKey("Model", "nope")],
            [
                "model 'nope' not found",
                "environment 'staging' is used by deployment 'mnist' in environment 'staging'; "
                "delete or change those first",
                "region 'eu' is used by deployment 'mnist' in environment 'production' (placed "
                "there), deployment 'mnist-eu' in environment 'production' (its policy names it "
                "in spec.policies[0].location.regions); delete or change those first",
            ],
            False,
        ),
        ([DEP, ResourceKey("Region", "mars")], ["region 'mars' not found"], True),
    ],
)
def test_every_problem_is_named_and_nothing_is_deleted(
    store: Store, targets: list[ResourceKey], problems: list[str], only_missing: bool
) -> None:
    before = store.snapshot()
    with pytest.raises(DeleteRefusedError) as refused:
        delete_resources(store, targets)
    assert list(refused.value.problems) == problems
    assert refused.value.only_missing is only_missing
    assert str(refused.value).startswith("nothing was deleted:\n  - ")
    after = store.snapshot()
    assert (after.revision, after.models, after.deployments, after.environments) == (
        before.revision,
        before.models,
        before.deployments,
        before.environments,
    )


def test_dry_run_and_ignore_not_found(store: Store) -> None:
    targets = [MODEL, DEP, DEP_EU, DEP_STAGING, ResourceKey("Model", "gone")]
    with pytest.raises(DeleteRefusedError, match="model 'gone' not found"):
        delete_resources(store, targets)
    revision = store.revision
    dry = delete_resources(store, targets, dry_run=True, ignore_not_found=True)
    assert store.revision == revision and len(store.list_deployments()) == 3
    done = delete_resources(store, targets, ignore_not_found=True)
    assert done == dry
    assert done == [
        (DEP, "deleted"),
        (DEP_EU, "deleted"),
        (DEP_STAGING, "deleted"),
        (MODEL, "deleted"),
        (ResourceKey("Model", "gone"), "not found"),
    ]
    assert store.list_deployments() == [] and store.list_models() == []
