"""Small constructors of resources for the control plane tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import (
    Deployment,
    Environment,
    LocationPolicy,
    Model,
    ModelVersion,
    Policy,
    Region,
    TensorSpec,
)


def model(
    name: str,
    versions: Sequence[tuple[str, str | Path]],
    runtime: str = "torch",
    labels: dict[str, str] | None = None,
) -> Resource:
    """A Model with (version name, path) pairs and a small FP32 signature."""
    obj = Model()
    obj.metadata.name = name
    obj.metadata.labels.update(labels or {})
    for version_name, path in versions:
        version = ModelVersion(name=version_name, runtime=runtime, path=str(path))
        version.signature.inputs.append(TensorSpec(name="x", datatype="FP32", shape=[-1, 4]))
        version.signature.outputs.append(TensorSpec(name="y", datatype="FP32", shape=[-1, 2]))
        obj.spec.versions.append(version)
    return Resource(model=obj)


def location(regions: Sequence[str] = (), countries: Sequence[str] = (), mode: str = "") -> Policy:
    return Policy(mode=mode, location=LocationPolicy(regions=regions, countries=countries))


def policy(rule: dict[str, Any], mode: str = "") -> Policy:
    """Any policy from its YAML form, e.g. `policy({"flavor": {"gpu": ["a100"]}}, "mandatory")`."""
    out = json_format.ParseDict(rule, Policy())
    out.mode = mode
    return out


def environment(name: str, policies: Sequence[Policy] = ()) -> Resource:
    obj = Environment()
    obj.metadata.name = name
    obj.spec.policies.extend(policies)
    return Resource(environment=obj)


def deployment(
    name: str,
    model_name: str,
    version: str,
    environment_name: str = "production",
    replicas: int = 1,
    policies: Sequence[Policy] = (),
) -> Resource:
    obj = Deployment()
    obj.metadata.name = name
    obj.spec.environment = environment_name
    obj.spec.model = model_name
    obj.spec.version = version
    obj.spec.replicas = replicas
    obj.spec.policies.extend(policies)
    return Resource(deployment=obj)


def region(
    name: str,
    country: str = "",
    continent: str = "",
    cpu: Sequence[str] = (),
    gpu: Sequence[str] = (),
    max_replicas: int = 0,
    memory_budget: str = "",
) -> Resource:
    obj = Region()
    obj.metadata.name = name
    obj.spec.country = country
    obj.spec.continent = continent
    obj.spec.flavors.cpu.extend(cpu)
    obj.spec.flavors.gpu.extend(gpu)
    obj.spec.max_replicas = max_replicas
    obj.spec.memory_budget = memory_budget
    return Resource(region=obj)


def model_file(directory: Path, name: str = "model.pt") -> Path:
    """A file standing in for a TorchScript artifact (the API only checks it exists)."""
    path = directory / name
    path.write_bytes(b"not really torchscript")
    return path
