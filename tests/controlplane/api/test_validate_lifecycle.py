"""Apply-time checks of `scaling` and `rollout`: impossible settings are errors naming the field;
good ones reach the autoscaler and the rollout controller as typed settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format

from controlplane.api import ApplyError, apply_resources, plan_apply
from controlplane.policy.scaling import ScalingSettings
from controlplane.store import Store
from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import ExternalEndpoint, RolloutSpec, ScalingSpec
from tests.controlplane.store.builders import deployment, environment, model, model_file, region


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    return model_file(tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store.db") as s:
        apply_resources(s, [region("eu", "DE", max_replicas=2), environment("production")])
        yield s


def scaled(artifact: Path, replicas: int = 0, **fields: object) -> list[Resource]:
    dep = deployment("d", "m", "v1", replicas=replicas)
    dep.deployment.spec.scaling.CopyFrom(json_format.ParseDict(fields, ScalingSpec()))
    return [model("m", [("v1", artifact)]), dep]


def _errors(store: Store, docs: list[Resource]) -> list[str]:
    with pytest.raises(ApplyError) as caught:
        plan_apply(docs, store.snapshot())
    return [f"{e.field_path}: {e.message}" for e in caught.value.errors]


@pytest.mark.parametrize(
    ("fields", "replicas", "expected"),
    [
        (
            {"max_replicas": 2},
            2,
            "spec.replicas: set replicas or scaling, not both: with scaling the autoscaler "
            "decides the replicas (got replicas 2)",
        ),
        ({"max_replicas": 0}, 0, "spec.scaling.max_replicas: must be between 1 and 64, got 0"),
        (
            {"min_replicas": 3, "max_replicas": 2},
            0,
            "spec.scaling.max_replicas: must be at least min_replicas (3), got 2",
        ),
        (
            {"min_replicas": 1, "max_replicas": 2, "scale_to_zero_after": 30},
            0,
            "spec.scaling.scale_to_zero_after: scaling to zero needs min_replicas 0, got "
            "min_replicas 1 (set scale_to_zero_after 0 to keep workers, or min_replicas 0 to let "
            "them go)",
        ),
        (
            {"max_replicas": 2, "target_concurrency": -1},
            0,
            "spec.scaling.target_concurrency: must be 0 (the default, 4) or between 0.01 and "
            "10000 requests in flight per worker, got -1",
        ),
        (
            {"max_replicas": 2, "cold_start_timeout": 900},
            0,
            "spec.scaling.cold_start_timeout: must be between 0 (the default, 30 s) and 600 "
            "seconds, got 900",
        ),
        (
            {"max_replicas": 2, "stable_window": 2, "panic_window": 5},
            0,
            "spec.scaling.panic_window: must not be longer than stable_window (2 s), got 5",
        ),
        (
            {"max_replicas": 2, "initial_replicas": 3},
            0,
            "spec.scaling.initial_replicas: must be at most max_replicas (2), got 3",
        ),
        (
            {"min_replicas": 2, "max_replicas": 4, "initial_replicas": 1},
            0,
            "spec.scaling.initial_replicas: must be at least min_replicas (2) or 0 "
            "(= min_replicas), got 1",
        ),
        (
            {"max_replicas": 2, "panic_window": 0.1},
            0,
            "spec.scaling.panic_window: must be 0 (the default, 1 s) or between 0.5 and 3600 "
            "seconds, got 0.1",
        ),
    ],
)
def test_impossible_scaling_is_an_error_naming_the_field(
    store: Store, artifact: Path, fields: dict[str, object], replicas: int, expected: str
) -> None:
    assert expected in _errors(store, scaled(artifact, replicas, **fields))


@pytest.mark.parametrize(
    ("memory", "expected"),
    [
        ("lots", "'lots' is not an amount of memory"),
        ("0Mi", "a worker needs more than 0 bytes, got 0Mi"),
        ("512MiB", "'512MiB' is not an amount of memory"),
    ],
)
def test_a_workers_declared_memory_is_an_amount(
    store: Store, artifact: Path, memory: str, expected: str
) -> None:
    docs = scaled(artifact, 1)
    docs[1].deployment.spec.ClearField("scaling")
    docs[1].deployment.spec.resources.memory = memory
    [error] = _errors(store, docs)
    assert error.startswith("spec.resources.memory: ") and expected in error, error


def test_an_external_triton_cannot_be_autoscaled(store: Store) -> None:
    doc = model("m", [("v1", "")], runtime="triton")
    doc.model.spec.versions[0].external.CopyFrom(
        ExternalEndpoint(grpc_address="10.0.0.5:8001", http_address="10.0.0.5:8000")
    )
    dep = deployment("d", "m", "v1", replicas=0)
    dep.deployment.spec.scaling.max_replicas = 2
    errors = _errors(store, [doc, dep])
    assert any(e.startswith("spec.scaling: model 'm' version 'v1' is an external") for e in errors)


def test_scale_to_zero_resolves_and_reserves_only_min_replicas(
    store: Store, artifact: Path
) -> None:
    # max_replicas 8 on a region of capacity 2: placement reserves min (0), not max.
    docs = scaled(
        artifact,
        max_replicas=8,
        scale_to_zero_after=60,
        target_concurrency=3,
        cold_start_timeout=12,
    )
    plan = plan_apply(docs, store.snapshot())
    resolved = plan.resolved[("production", "d")]
    assert resolved.replicas == 0
    assert resolved.scaling == ScalingSettings(
        min_replicas=0,
        max_replicas=8,
        autoscaled=True,
        target_concurrency=3,
        scale_to_zero_after_s=60,
        cold_start_timeout_s=12,
    )
    assert resolved.scaling.scales_to_zero


def test_min_replicas_beyond_a_regions_capacity_places_nowhere(
    store: Store, artifact: Path
) -> None:
    errors = _errors(store, scaled(artifact, min_replicas=3, max_replicas=4))
    assert any("capacity (max_replicas 2" in e for e in errors), errors


def with_rollout(artifact: Path, **fields: object) -> list[Resource]:
    docs = [model("m", [("v1", artifact)]), deployment("d", "m", "v1")]
    docs[1].deployment.spec.rollout.CopyFrom(json_format.ParseDict(fields, RolloutSpec()))
    return docs


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"strategy": "blue-green"},
            "spec.rollout.strategy: unknown strategy 'blue-green' (one of: immediate, canary)",
        ),
        (
            {"steps": [{"weight": 10, "duration": 5}]},
            "spec.rollout.steps: steps are for strategy canary",
        ),
        (
            {"strategy": "canary", "steps": [{"weight": 50, "duration": 5}, {"weight": 20}]},
            "spec.rollout.steps[1].weight: steps must grow: 20% after 50%",
        ),
        (
            {"strategy": "canary", "steps": [{"weight": 0, "duration": 5}]},
            "spec.rollout.steps[0].weight: must be between 1 and 100 percent, got 0",
        ),
        (
            {"strategy": "canary", "steps": [{"weight": 10}]},
            "spec.rollout.steps[0].duration: must be above 0 and at most 86400 seconds, got 0",
        ),
        (
            {"strategy": "canary", "analysis": {"max_latency_ratio": 0.5}},
            "spec.rollout.analysis.max_latency_ratio: must be 0 (the default, 2) or between 1 "
            "and 1000, got 0.5",
        ),
    ],
)
def test_impossible_rollouts_are_errors_naming_the_field(
    store: Store, artifact: Path, fields: dict[str, object], expected: str
) -> None:
    assert expected in _errors(store, with_rollout(artifact, **fields))


def test_a_canary_and_a_traffic_split_cannot_both_set_weights(store: Store, artifact: Path) -> None:
    docs = with_rollout(artifact, strategy="canary")
    split = docs[1].deployment.spec.policies.add()
    split.traffic.split.add(version="v1", weight=100)
    errors = _errors(store, docs)
    assert any(
        e.startswith("spec.rollout.strategy: a canary rollout sets the split") for e in errors
    )


def test_a_canary_without_steps_gets_the_default_ones(store: Store, artifact: Path) -> None:
    from controlplane.rollout import rollout_settings

    docs = with_rollout(artifact, strategy="canary")
    plan_apply(docs, store.snapshot())
    settings = rollout_settings(docs[1].deployment.spec)
    assert settings.steps == ((10, 60.0), (50, 60.0))


@pytest.mark.parametrize(
    ("runtime", "change", "expected"),
    [
        (
            "torch",
            {"packing": "sharde"},
            "unknown packing 'sharde' (expected one of dedicated, shared)",
        ),
        (
            "triton",
            {},
            "packing: shared needs runtime torch; model 'm' version 'v1' is runtime 'triton'",
        ),
        (
            "torch",
            {"instances": 2},
            "packing: shared loads one copy of the model per shared worker, got instances 2",
        ),
        ("torch", {"max_batch_size": 8}, "packing: shared runs each model without batching"),
    ],
)
def test_packing_is_shared_only_where_one_process_can_serve_the_model(
    store: Store, artifact: Path, runtime: str, change: dict[str, object], expected: str
) -> None:
    doc = model("m", [("v1", artifact)], runtime=runtime)
    dep = deployment("d", "m", "v1", replicas=1)
    spec = dep.deployment.spec
    spec.resources.packing = str(change.get("packing", "shared"))
    spec.instances = int(str(change.get("instances", 0)))
    if "max_batch_size" in change:
        spec.batching.max_batch_size = int(str(change["max_batch_size"]))
        spec.batching.max_delay_ms = 5
    errors = _errors(store, [doc, dep])
    assert any(e.startswith("spec.resources.packing: ") and expected in e for e in errors), errors


def test_a_packed_deployment_runs_in_a_shared_worker_and_a_change_of_packing_replaces_it(
    store: Store, artifact: Path
) -> None:
    from controlplane.reconcile.plan import plan_network

    dep = deployment("d", "m", "v1", replicas=1)
    apply_resources(store, [model("m", [("v1", artifact)]), dep])
    dedicated = plan_network(store.snapshot()).workloads
    dep.deployment.spec.resources.packing = "shared"
    apply_resources(store, [dep])
    shared = plan_network(store.snapshot()).workloads
    [(key, before)] = dedicated.items()
    after = shared[key]
    assert not before.packed and after.packed
    assert before.revision != after.revision  # make-before-break into the shared worker
