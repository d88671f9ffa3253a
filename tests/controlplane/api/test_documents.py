"""YAML documents to Resources: malformed input gets an error naming file, document and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.api import DocumentError, parse_resource_document

DEPLOYMENT = """
apiVersion: meshline/v1
kind: Deployment
metadata:
  name: mnist
  labels: {team: vision}
spec:
  environment: production
  model: mnist
  version: v1
  replicas: 2
  policies:
    - location: {regions: [eu], countries: [DE]}
"""


def test_a_good_document_becomes_a_resource() -> None:
    resource = parse_resource_document(yaml.safe_load(DEPLOYMENT), "deployments.yaml", 0)
    dep = resource.deployment
    assert dep.metadata.name == "mnist"
    assert dict(dep.metadata.labels) == {"team": "vision"}
    assert (dep.spec.model, dep.spec.version, dep.spec.replicas) == ("mnist", "v1", 2)
    assert list(dep.spec.policies[0].location.regions) == ["eu"]


def test_every_kind_parses() -> None:
    docs = yaml.safe_load_all(
        """
kind: Model
metadata: {name: mnist}
spec:
  versions:
    - name: v1
      runtime: torch
      path: /models/mnist.pt
      signature:
        inputs: [{name: x, datatype: FP32, shape: [-1, 784]}]
---
kind: Environment
metadata: {name: production}
spec: {policies: [{mode: mandatory, location: {countries: [DE]}}]}
---
kind: Region
metadata: {name: eu}
spec: {country: DE}
"""
    )
    kinds = [
        parse_resource_document(doc, "all.yaml", i).WhichOneof("kind") for i, doc in enumerate(docs)
    ]
    assert kinds == ["model", "environment", "region"]


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(DEPLOYMENT)
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = doc
        for part in parents:
            target = target[part]
        if value is _DROP:
            del target[last]
        else:
            target[last] = value
    return doc


_DROP = object()

MALFORMED = [
    pytest.param(
        _doc(spec__replicaz=3),
        "deployments.yaml document 2 (Deployment mnist): unknown field 'replicaz' in spec",
        "spec.replicaz",
        id="unknown-field-in-spec",
    ),
    pytest.param(
        _doc(spec__policies=[{"location": {"regionz": ["eu"]}}]),
        "unknown field 'regionz' in spec.policies[0].location",
        "spec.policies[0].location.regionz",
        id="unknown-nested-field",
    ),
    pytest.param(
        _doc(extra={"a": 1}),
        "unknown field 'extra' (expected apiVersion, kind, metadata, spec, status)",
        "extra",
        id="unknown-top-level-field",
    ),
    pytest.param(
        _doc(spec__replicas="three"),
        "spec.replicas: expected an integer, got 'three'",
        "spec.replicas",
        id="wrong-type-integer",
    ),
    pytest.param(
        _doc(spec__version=1),
        "spec.version: expected a string, got 1 (quote it)",
        "spec.version",
        id="wrong-type-string",
    ),
    pytest.param(
        _doc(spec__policies={"location": {}}),
        "spec.policies: expected a list, got a mapping",
        "spec.policies",
        id="wrong-type-list",
    ),
    pytest.param(
        _doc(spec__replicas=99999999999),
        "spec.replicas: must be between 0 and 64, got 99999999999",
        "spec.replicas",
        id="integer-out-of-range",
    ),
    pytest.param(
        _doc(spec__replicas=True),
        "spec.replicas: expected an integer, got True",
        "spec.replicas",
        id="bool-for-an-integer",
    ),
    pytest.param(
        _doc(spec__policies=[{"failover": {"health_check": {"unhealthy_threshold": 2**32}}}]),
        "spec.policies[0].failover.health_check.unhealthy_threshold: must be 0 (the default, 3) "
        "or between 1 and 1000, got 4294967296",
        "spec.policies[0].failover.health_check.unhealthy_threshold",
        id="nested-integer-beyond-int32",
    ),
    pytest.param(
        _doc(spec__policies=[{"routing": {"timeout_s": float("nan")}}]),
        "spec.policies[0].routing.timeout_s: must be 0 (the default, 30 s) or between 0.001 and "
        "86400 seconds, got nan",
        "spec.policies[0].routing.timeout_s",
        id="nan",
    ),
    pytest.param(
        _doc(spec__policies=[{"traffic": {"mirror": {"version": "v2", "percent": float("inf")}}}]),
        "spec.policies[0].traffic.mirror.percent: must be between 0.0001 and 100 percent, got inf",
        "spec.policies[0].traffic.mirror.percent",
        id="infinity",
    ),
    pytest.param(
        _doc(spec__policies=[{"routing": {"retries": {"budget_percent": -(10**400)}}}]),
        "spec.policies[0].routing.retries.budget_percent: must be between 0 (no budget) and 100 "
        "percent, got -100... (401 digits)",
        "spec.policies[0].routing.retries.budget_percent",
        id="integer-beyond-a-double",
    ),
    pytest.param(
        _doc(spec__policies=[{"routing": {"timeout_s": False}}]),
        "spec.policies[0].routing.timeout_s: expected a number, got False",
        "spec.policies[0].routing.timeout_s",
        id="bool-for-a-number",
    ),
    pytest.param(
        _doc(metadata__name=_DROP),
        "deployments.yaml document 2 (Deployment): metadata.name is required",
        "metadata.name",
        id="missing-name",
    ),
    pytest.param(
        _doc(metadata=_DROP),
        "metadata with a name is required",
        "metadata",
        id="missing-metadata",
    ),
    pytest.param(
        _doc(kind="Deploymnt"),
        "unknown kind 'Deploymnt' (expected one of Model, Environment, Deployment, Region)",
        "kind",
        id="unknown-kind",
    ),
    pytest.param(_doc(kind=_DROP), "kind is required", "kind", id="missing-kind"),
    pytest.param(
        _doc(apiVersion="meshline/v2"),
        "unsupported apiVersion 'meshline/v2' (expected meshline/v1)",
        "apiVersion",
        id="other-api-version",
    ),
    pytest.param(
        ["not", "a", "mapping"],
        "deployments.yaml document 2: expected a mapping with kind, metadata and spec, got a list",
        "",
        id="not-a-mapping",
    ),
]


@pytest.mark.parametrize(("doc", "message", "field"), MALFORMED)
def test_malformed_documents(doc: object, message: str, field: str) -> None:
    with pytest.raises(DocumentError) as caught:
        parse_resource_document(doc, "deployments.yaml", 1)
    assert message in str(caught.value)
    assert str(caught.value).startswith("deployments.yaml document 2")
    assert caught.value.field == field


def test_api_version_may_be_left_out() -> None:
    resource = parse_resource_document(_doc(apiVersion=_DROP), "d.yaml", 0)
    assert resource.deployment.metadata.name == "mnist"


def test_status_is_only_a_field_of_kinds_that_have_one() -> None:
    with pytest.raises(DocumentError, match="unknown field 'status'"):
        parse_resource_document(
            {"kind": "Model", "metadata": {"name": "m"}, "status": {}}, "m.yaml", 0
        )


def test_server_set_fields_are_dropped_so_get_output_applies_again() -> None:
    doc = _doc(status={"phase": "Ready"})
    doc["metadata"].update(createdAt="2025-01-01T00:00:00Z", generation=3)
    dep = parse_resource_document(doc, "d.yaml", 0).deployment
    assert not dep.HasField("status")
    assert dep.metadata.created_at == ""
    assert dep.metadata.generation == 0


def test_relative_model_paths_resolve_against_base_dir(tmp_path: Path) -> None:
    doc = {
        "kind": "Model",
        "metadata": {"name": "m"},
        "spec": {
            "versions": [
                {"name": "v1", "runtime": "torch", "path": "artifacts/m.pt"},
                {"name": "v2", "runtime": "torch", "path": "/abs/m.pt"},
            ]
        },
    }
    model = parse_resource_document(doc, "m.yaml", 0, base_dir=tmp_path).model
    assert [v.path for v in model.spec.versions] == [str(tmp_path / "artifacts/m.pt"), "/abs/m.pt"]
    untouched = parse_resource_document(doc, "m.yaml", 0).model
    assert untouched.spec.versions[0].path == "artifacts/m.pt"
