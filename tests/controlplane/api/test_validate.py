"""Apply-time checks: each bad field reported with its path, placements resolved."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.api import ApplyError, FieldError, apply_resources, plan_apply
from controlplane.store import Store
from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import Policy, TensorSpec
from tests.controlplane.store.builders import (
    deployment,
    environment,
    location,
    model,
    model_file,
    region,
)


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    return model_file(tmp_path)


@pytest.fixture
def store(tmp_path: Path, artifact: Path) -> Iterator[Store]:
    """eu (DE) and us (US), environment production, model mnist v1, deployment mnist."""
    with Store.open(tmp_path / "store.db") as s:
        apply_resources(
            s,
            [
                region("eu", "DE"),
                region("us", "US"),
                environment("production"),
                model("mnist", [("v1", artifact)]),
                deployment("mnist", "mnist", "v1"),
            ],
        )
        yield s


def _errors(store: Store, docs: list[Resource]) -> list[FieldError]:
    with pytest.raises(ApplyError) as caught:
        plan_apply(docs, store.snapshot())
    return caught.value.errors


def _with_signature(doc: Resource, datatype: str, shape: list[int]) -> Resource:
    doc.model.spec.versions[0].signature.inputs[0].CopyFrom(
        TensorSpec(name="x", datatype=datatype, shape=shape)
    )
    return doc


def _bad_model_cases(artifact: Path, missing: Path) -> list[tuple[Resource, str, str]]:
    """(document, field path, the whole error line)."""
    long_name = "m" * 64
    return [
        (
            model("MNIST", [("v1", artifact)]),
            "metadata.name",
            "model 'MNIST': metadata.name: 'MNIST' is not a DNS-1123 label: use lowercase "
            "letters, digits and '-', starting and ending with a letter or digit",
        ),
        (
            model(long_name, [("v1", artifact)]),
            "metadata.name",
            f"model '{long_name}': metadata.name: '{long_name}' is longer than 63 characters",
        ),
        (
            model("x", [("v1", artifact)], runtime="onnx"),
            "spec.versions[0].runtime",
            "model 'x' version 'v1': spec.versions[0].runtime: unknown runtime 'onnx' "
            "(expected one of torch, triton)",
        ),
        (
            model("x", [("v1", artifact)], runtime=""),
            "spec.versions[0].runtime",
            "model 'x' version 'v1': spec.versions[0].runtime: runtime is required (torch, triton)",
        ),
        (
            model("x", [("v1", artifact), ("v2", missing)]),
            "spec.versions[1].path",
            f"model 'x' version 'v2': spec.versions[1].path: file {missing} does not exist",
        ),
        (
            model("x", [("v1", "models/x.pt")]),
            "spec.versions[0].path",
            "model 'x' version 'v1': spec.versions[0].path: 'models/x.pt' is relative; give an "
            "absolute path (every agent reads it)",
        ),
        (
            model("x", [("v1", "")]),
            "spec.versions[0].path",
            "model 'x' version 'v1': spec.versions[0].path: path is required (or huggingface, "
            "sha256 of a pushed artifact, or external: an existing Triton)",
        ),
        (
            model("x", [("v1", artifact.parent)]),
            "spec.versions[0].path",
            f"model 'x' version 'v1': spec.versions[0].path: {artifact.parent} is not a file "
            "(expected TorchScript)",
        ),
        (
            model("x", [("v1", artifact), ("v1", artifact)]),
            "spec.versions[1].name",
            "model 'x' version 'v1': spec.versions[1].name: version name 'v1' is already used "
            "by spec.versions[0]",
        ),
        (
            model("x", [("", artifact)]),
            "spec.versions[0].name",
            "model 'x': spec.versions[0].name: a version needs a name",
        ),
        (
            model("x", []),
            "spec.versions",
            "model 'x': spec.versions: a model needs at least one version",
        ),
        (
            _with_signature(model("x", [("v1", artifact)]), "FLOAT32", [-1]),
            "spec.versions[0].signature.inputs[0].datatype",
            "model 'x' version 'v1': spec.versions[0].signature.inputs[0].datatype: 'FLOAT32' "
            "is not an Open Inference Protocol datatype (BOOL, BYTES, FP16, FP32, FP64, INT16, "
            "INT32, INT64, INT8, UINT16, UINT32, UINT64, UINT8)",
        ),
        (
            _with_signature(model("x", [("v1", artifact)]), "FP32", [-1, 0]),
            "spec.versions[0].signature.inputs[0].shape[1]",
            "model 'x' version 'v1': spec.versions[0].signature.inputs[0].shape[1]: must be -1 "
            "(any size) or between 1 and 2147483647, got 0",
        ),
        (
            _with_signature(model("x", [("v1", artifact)]), "FP32", [-2]),
            "spec.versions[0].signature.inputs[0].shape[0]",
            "model 'x' version 'v1': spec.versions[0].signature.inputs[0].shape[0]: must be -1 "
            "(any size) or between 1 and 2147483647, got -2",
        ),
    ]


def test_bad_models(store: Store, artifact: Path, tmp_path: Path) -> None:
    for doc, path, line in _bad_model_cases(artifact, tmp_path / "missing.pt"):
        errors = _errors(store, [region("asia", "JP"), doc])
        assert [(e.document_index, e.field_path, str(e)) for e in errors] == [(1, path, line)]


BAD_OTHERS = [
    pytest.param(
        deployment("d", "mnist", "v1", replicas=65),
        "spec.replicas",
        "deployment 'd': spec.replicas: must be between 0 and 64, got 65",
        id="too-many-replicas",
    ),
    pytest.param(
        deployment("d", "mnist", "v1", replicas=-1),
        "spec.replicas",
        "deployment 'd': spec.replicas: must be between 0 and 64, got -1",
        id="negative-replicas",
    ),
    pytest.param(
        deployment("d", "mnist", "v1", environment_name="staging"),
        "spec.environment",
        "deployment 'd': spec.environment: environment 'staging' does not exist",
        id="missing-environment",
    ),
    pytest.param(
        deployment("d", "resnet", "v1"),
        "spec.model",
        "deployment 'd': spec.model: model 'resnet' does not exist",
        id="missing-model",
    ),
    pytest.param(
        deployment("d", "mnist", "v9"),
        "spec.version",
        "deployment 'd': spec.version: model 'mnist' has no version 'v9' (versions: v1)",
        id="missing-version",
    ),
    pytest.param(
        deployment("d", "mnist", ""),
        "spec.version",
        "deployment 'd': spec.version: version is required",
        id="no-version",
    ),
    pytest.param(
        deployment("d", "mnist", "v1", policies=[location(["eu"], mode="mandatory")]),
        "spec.policies[0].mode",
        "deployment 'd': spec.policies[0].mode: mode is set on environment policies only",
        id="mode-on-deployment",
    ),
    pytest.param(
        deployment("d", "mnist", "v1", policies=[Policy()]),
        "spec.policies[0]",
        "deployment 'd': spec.policies[0]: a policy needs a rule "
        "(location, flavor, routing, failover, offload, traffic, access, rate)",
        id="policy-without-rule",
    ),
    pytest.param(
        deployment("d", "mnist", "v1", policies=[location(["mars"])]),
        "spec.policies[0].location.regions[0]",
        "deployment 'd': spec.policies[0].location.regions[0]: unknown region 'mars' "
        "(registered: apac, eu, us)",
        id="unknown-region",
    ),
    pytest.param(
        deployment("d", "mnist", "v1", policies=[location(["eu"]), location(["us"])]),
        "spec.policies[1].location",
        "deployment 'd': spec.policies[1].location: a second location policy (first at "
        "spec.policies[0]); put it into one policy",
        id="two-location-policies",
    ),
    pytest.param(
        environment("staging", [location(countries=["Germany"], mode="mandatory")]),
        "spec.policies[0].location.countries[0]",
        "environment 'staging': spec.policies[0].location.countries[0]: 'Germany' is not an "
        "ISO 3166-1 alpha-2 country code such as DE",
        id="bad-country",
    ),
    pytest.param(
        environment("staging", [location(["eu"], mode="always")]),
        "spec.policies[0].mode",
        "environment 'staging': spec.policies[0].mode: unknown mode 'always' (expected "
        "mandatory or optional)",
        id="bad-mode",
    ),
    pytest.param(
        region("asia", "Japan"),
        "spec.country",
        "region 'asia': spec.country: 'Japan' is not an ISO 3166-1 alpha-2 country code such as DE",
        id="bad-region-country",
    ),
    pytest.param(
        region("Asia_1", "JP"),
        "metadata.name",
        "region 'Asia_1': metadata.name: 'Asia_1' is not a DNS-1123 label: use lowercase "
        "letters, digits and '-', starting and ending with a letter or digit",
        id="bad-region-name",
    ),
    pytest.param(
        Resource(),
        "kind",
        "document #2: kind: document has no kind set",
        id="no-kind",
    ),
]


@pytest.mark.parametrize(("doc", "path", "line"), BAD_OTHERS)
def test_bad_documents(store: Store, doc: Resource, path: str, line: str) -> None:
    errors = _errors(store, [region("apac", "JP"), doc])
    assert [(e.document_index, e.field_path, str(e)) for e in errors] == [(1, path, line)]


def test_references_may_point_into_the_same_request(store: Store, artifact: Path) -> None:
    plan = plan_apply(
        [
            deployment("r", "resnet", "v2", environment_name="staging"),
            model("resnet", [("v2", artifact)]),
            environment("staging"),
            region("asia", "JP"),
        ],
        store.snapshot(),
    )
    assert plan.resolved[("staging", "r")].placement.regions == ("asia", "eu", "us")


def test_every_error_is_collected_in_document_order(store: Store, tmp_path: Path) -> None:
    docs = [
        model("x", [("v1", tmp_path / "nope.pt")]),
        deployment("d", "mnist", "v1", replicas=100, environment_name="qa"),
    ]
    error = _errors(store, docs)
    assert [(e.document_index, e.field_path) for e in error] == [
        (0, "spec.versions[0].path"),
        (1, "spec.environment"),
        (1, "spec.replicas"),
    ]
    with pytest.raises(ApplyError) as caught:
        plan_apply(docs, store.snapshot())
    assert str(caught.value).splitlines() == [
        f"model 'x' version 'v1': spec.versions[0].path: file {tmp_path / 'nope.pt'} does not "
        "exist",
        "deployment 'd': spec.environment: environment 'qa' does not exist",
        "deployment 'd': spec.replicas: must be between 0 and 64, got 100",
    ]


def test_a_document_given_twice(store: Store) -> None:
    [error] = _errors(store, [region("asia", "JP"), region("asia", "KR")])
    assert error.document_index == 1
    assert "region 'asia' appears twice in this apply (documents #1 and #2)" in str(error)


def test_dropping_a_version_a_stored_deployment_runs(store: Store, artifact: Path) -> None:
    [error] = _errors(store, [model("mnist", [("v2", artifact)])])
    assert (error.document_index, error.field_path) == (0, "spec.versions")
    assert "version 'v1' is still used by deployment 'mnist' in environment 'production'" in str(
        error
    )
    # Moving the deployment along in the same request is fine.
    apply_resources(store, [model("mnist", [("v2", artifact)]), deployment("mnist", "mnist", "v2")])
    assert store.get_deployment("production", "mnist").spec.version == "v2"


def test_colliding_policies_are_an_apply_error(store: Store) -> None:
    docs = [
        environment("production", [location(["eu"], mode="mandatory")]),
        deployment("mnist", "mnist", "v1", policies=[location(["us"])]),
    ]
    [error] = _errors(store, docs)
    assert (error.document_index, error.field_path) == (1, "spec.policies")
    assert (
        "environment 'production' mandatory location {regions: [eu]} and deployment 'mnist' "
        "location {regions: [us]} allow no common region" in error.message
    )
    assert store.get_environment("production").spec.policies == []


def test_a_change_that_strands_a_stored_deployment_is_refused(store: Store) -> None:
    [error] = _errors(store, [environment("production", [location(countries=["JP"])])])
    assert error.document_index == 0  # the environment document that strands it
    assert (error.kind, error.name, error.field_path) == (
        "Environment",
        "production",
        "spec.policies",
    )
    assert error.message.startswith(
        "this apply would leave deployment 'mnist' running nowhere: no registered region satisfies "
        "environment 'production' optional location {countries: [JP]}"
    )


def test_apply_reports_placements_and_stores_nothing_when_dry(store: Store) -> None:
    revision = store.revision
    docs = [deployment("eu-only", "mnist", "v1", policies=[location(countries=["DE"])])]
    [dry] = apply_resources(store, docs, dry_run=True)
    assert (dry.kind, dry.name, dry.action, list(dry.placement)) == (
        "Deployment",
        "eu-only",
        "created",
        ["eu"],
    )
    assert store.revision == revision
    [real] = apply_resources(store, docs)
    assert (real.action, list(real.placement)) == ("created", ["eu"])
    assert store.revision == revision + 1
