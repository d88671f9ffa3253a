"""Apply-time checks of how a version is served: Triton, external servers, batching."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format

from controlplane.api import ApplyError, apply_resources, plan_apply
from controlplane.reconcile import plan_network
from controlplane.store import Store
from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import BatchingSpec, ExternalEndpoint, TensorSpec
from tests.controlplane.store.builders import deployment, environment, model, model_file, region


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    return model_file(tmp_path)


@pytest.fixture
def store(tmp_path: Path, artifact: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store.db") as s:
        apply_resources(s, [region("eu", "DE"), environment("production")])
        yield s


def external_model(name: str, **fields: str) -> Resource:
    doc = model(name, [("v1", "")], runtime="triton")
    doc.model.spec.versions[0].external.CopyFrom(ExternalEndpoint(**fields))
    return doc


def batched(doc: Resource, **fields: object) -> Resource:
    doc.deployment.spec.batching.CopyFrom(json_format.ParseDict(fields, BatchingSpec()))
    return doc


def _lines(store: Store, docs: list[Resource]) -> list[str]:
    with pytest.raises(ApplyError) as caught:
        plan_apply(docs, store.snapshot())
    return [str(e) for e in caught.value.errors]


def test_triton_runtime_with_a_torchscript_file_is_accepted(store: Store, artifact: Path) -> None:
    docs = [model("m", [("v1", artifact)], runtime="triton"), deployment("m", "m", "v1")]
    plan_apply(docs, store.snapshot())


def test_external_triton_is_accepted_without_a_path(store: Store) -> None:
    docs = [
        external_model("m", grpc_address="10.0.0.5:8001", http_address="10.0.0.5:8000"),
        deployment("m", "m", "v1"),
    ]
    plan_apply(docs, store.snapshot())


@pytest.mark.parametrize(
    ("doc", "line"),
    [
        (
            external_model("m", http_address="10.0.0.5:8000"),
            "model 'm' version 'v1': spec.versions[0].external.grpc_address: grpc_address is "
            "required (ip:port)",
        ),
        (
            external_model("m", grpc_address="10.0.0.5:8001", http_address="8000"),
            "model 'm' version 'v1': spec.versions[0].external.http_address: '8000' is not "
            "ip:port (e.g. 10.0.0.5:8001)",
        ),
        (
            external_model(
                "m",
                grpc_address="10.0.0.5:8001",
                http_address="10.0.0.5:8000",
                metrics_address="10.0.0.5:99999",
            ),
            "model 'm' version 'v1': spec.versions[0].external.metrics_address: "
            "'10.0.0.5:99999' is not ip:port (e.g. 10.0.0.5:8001)",
        ),
        (
            external_model("m", grpc_address="triton.local:8001", http_address="10.0.0.5:8000"),
            "model 'm' version 'v1': spec.versions[0].external.grpc_address: 'triton.local' is "
            "not an IP address (gateways route to IP literals; resolve it first)",
        ),
        (
            external_model("m", grpc_address="10.0.0.5:8001", http_address="10.0.0.6:8000"),
            "model 'm' version 'v1': spec.versions[0].external.http_address: must be on the "
            "host of grpc_address (10.0.0.5), got 10.0.0.6: one endpoint serves both protocols",
        ),
        (external_model("m", grpc_address="[::1]:8001", http_address="[::1]:8000"), None),
    ],
)
def test_bad_external_endpoints(store: Store, doc: Resource, line: str | None) -> None:
    if line is None:
        plan_apply([doc], store.snapshot())  # accepted
    else:
        assert _lines(store, [doc]) == [line]


def test_external_must_be_triton_and_has_no_path(store: Store, artifact: Path) -> None:
    doc = external_model("m", grpc_address="10.0.0.5:8001", http_address="10.0.0.5:8000")
    doc.model.spec.versions[0].runtime = "torch"
    doc.model.spec.versions[0].path = str(artifact)
    assert _lines(store, [doc]) == [
        "model 'm' version 'v1': spec.versions[0].runtime: external endpoints are Triton "
        "servers: runtime must be 'triton', not 'torch'",
        "model 'm' version 'v1': spec.versions[0].path: an external Triton serves its own "
        "model: give path or external, not both",
    ]


def test_a_version_needs_a_path_or_an_external_server(store: Store) -> None:
    assert _lines(store, [model("m", [("v1", "")], runtime="triton")]) == [
        "model 'm' version 'v1': spec.versions[0].path: path is required (or huggingface, "
        "sha256 of a pushed artifact, or external: an existing Triton)"
    ]


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        (
            {"max_batch_size": -1},
            "spec.batching.max_batch_size: must be between 0 and 4096, got -1",
        ),
        (
            {"max_batch_size": 8, "max_delay_ms": -2},
            "spec.batching.max_delay_ms: must be between 0 and 10000 ms, got -2",
        ),
        (
            {"max_batch_size": 8, "preferred_batch_sizes": [4, 16]},
            "spec.batching.preferred_batch_sizes[1]: must be between 1 and max_batch_size (8), "
            "got 16",
        ),
        (
            {"max_delay_ms": 5},
            "spec.batching.max_delay_ms: needs max_batch_size above 1 (batching on)",
        ),
        (
            {"preferred_batch_sizes": [1]},
            "spec.batching.preferred_batch_sizes: needs max_batch_size above 1 (batching on)",
        ),
        (
            {"priority_levels": 2},
            "spec.batching.priority_levels: needs max_batch_size above 1: requests are ordered "
            "in the batcher's queue",
        ),
        (
            {"max_batch_size": 4, "priority_levels": 2, "default_priority_level": 3},
            "spec.batching.default_priority_level: must be between 0 (the lowest level) and "
            "priority_levels (2), got 3",
        ),
    ],
)
def test_impossible_batching(
    store: Store, artifact: Path, fields: dict[str, object], line: str
) -> None:
    docs = [model("m", [("v1", artifact)]), batched(deployment("m", "m", "v1"), **fields)]
    assert _lines(store, docs) == [f"deployment 'm': {line}"]


def test_batching_a_model_without_a_batch_dimension(store: Store, artifact: Path) -> None:
    doc = model("m", [("v1", artifact)])
    doc.model.spec.versions[0].signature.inputs[0].CopyFrom(
        TensorSpec(name="x", datatype="FP32", shape=[3, 4])
    )
    docs = [doc, batched(deployment("m", "m", "v1"), max_batch_size=8)]
    assert _lines(store, docs) == [
        "deployment 'm': spec.batching.max_batch_size: model 'm' version 'v1' cannot be "
        "batched: input 'x' has shape [3, 4]; batching needs -1 as the first dimension"
    ]


def test_an_external_server_batches_by_its_own_config(store: Store) -> None:
    dep = batched(deployment("m", "m", "v1"), max_batch_size=8)
    dep.deployment.spec.instances = 2
    docs = [external_model("m", grpc_address="10.0.0.5:8001", http_address="10.0.0.5:8000"), dep]
    assert _lines(store, docs) == [
        "deployment 'm': spec.batching: model 'm' version 'v1' is an external Triton: batching "
        "is set in its own config.pbtxt",
        "deployment 'm': spec.instances: model 'm' version 'v1' is an external Triton: "
        "instances are set in its own config.pbtxt",
    ]


def test_batching_reaches_the_workload_and_changing_it_replaces_workers(
    store: Store, artifact: Path
) -> None:
    apply_resources(store, [model("m", [("v1", artifact)], runtime="triton")])
    apply_resources(store, [deployment("m", "m", "v1")])
    before = plan_network(store.snapshot()).workloads[("production", "m", "")]
    apply_resources(store, [batched(deployment("m", "m", "v1"), max_batch_size=8, max_delay_ms=2)])
    after = plan_network(store.snapshot()).workloads[("production", "m", "")]
    assert after.runtime == "triton"
    assert after.batching.max_batch_size == 8 and after.batching.max_delay_ms == 2
    assert after.instances == 1
    assert after.revision != before.revision  # a worker takes batching at start: replace it


def test_an_external_server_is_one_endpoint(store: Store) -> None:
    docs = [
        external_model("m", grpc_address="10.0.0.5:8001", http_address="10.0.0.5:8000"),
        deployment("m", "m", "v1", replicas=2),
    ]
    assert _lines(store, docs) == [
        "deployment 'm': spec.replicas: model 'm' version 'v1' is an external Triton, one "
        "endpoint: replicas must be 0 or 1, got 2"
    ]


def test_changing_a_version_under_a_batched_deployment_is_refused(
    store: Store, artifact: Path
) -> None:
    apply_resources(store, [model("m", [("v1", artifact)])])
    apply_resources(store, [batched(deployment("m", "m", "v1"), max_batch_size=8)])
    doc = model("m", [("v1", artifact)])
    doc.model.spec.versions[0].signature.inputs[0].CopyFrom(
        TensorSpec(name="x", datatype="FP32", shape=[3, 4])
    )
    assert _lines(store, [doc]) == [
        "model 'm' version 'v1': spec.versions[0]: deployment 'm' in environment 'production' "
        "runs this version "
        "with spec.batching.max_batch_size, which it would no longer fit: model 'm' version "
        "'v1' cannot be batched: input 'x' has shape [3, 4]; batching needs -1 as the first "
        "dimension"
    ]
    assert (
        plan_network(store.snapshot()).workloads[("production", "m", "")].batching.max_batch_size
        == 8
    )


def test_revisions_without_serving_settings_are_unchanged_and_equivalent_settings_agree(
    store: Store, artifact: Path
) -> None:
    """Upgrading must not restart existing workers: without batching/instances the revision is
    the hash of the version alone, as before; settings equal to the defaults change nothing."""
    import hashlib
    import json

    from controlplane.reconcile import workload_revision

    doc = model("m", [("v1", artifact)])
    apply_resources(store, [doc])
    version = store.snapshot().models[0].spec.versions[0]
    assert version.sha256 and version.created_at, "registered with its metadata"
    # The version as a store from before the registry held it: registry metadata added since
    # (sha256, size, created_at, ...) must not change its revision.
    before = doc.model.spec.versions[0]
    legacy = hashlib.sha256(
        json.dumps(
            json_format.MessageToDict(before, preserving_proto_field_name=True), sort_keys=True
        ).encode()
    ).hexdigest()[:16]
    plain = deployment("m", "m", "v1").deployment.spec
    assert workload_revision(version, plain) == legacy
    defaults = deployment("m", "m", "v1").deployment.spec
    defaults.instances = 1
    defaults.batching.SetInParent()
    assert workload_revision(version, defaults) == legacy
    two = deployment("m", "m", "v1").deployment.spec
    two.instances = 2
    assert workload_revision(version, two) != legacy
    a, b = (
        batched(deployment("m", "m", "v1"), max_batch_size=8, preferred_batch_sizes=p)
        for p in ([4, 8], [8, 4])
    )
    assert workload_revision(version, a.deployment.spec) == workload_revision(
        version, b.deployment.spec
    )
