"""Checks of each document against the rules and against what will exist after the apply."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from controlplane.api.errors import FieldError
from controlplane.api.index import ResourceIndex
from controlplane.policy import MODE_MANDATORY, MODE_OPTIONAL, POLICY_MODES
from controlplane.store import (
    KIND_DEPLOYMENT,
    KIND_MODEL,
    ResourceKey,
    key_of,
    kind_of,
    unwrap,
)
from controlplane.store.names import dns1123_label_problem
from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import (
    Deployment,
    Environment,
    Model,
    ModelVersion,
    Policy,
    Region,
    TensorSpec,
)

OIP_DATATYPES: frozenset[str] = frozenset(
    {
        "BOOL",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "FP16",
        "FP32",
        "FP64",
        "BYTES",
    }
)
RUNTIMES: tuple[str, ...] = ("torch", "triton")
SUPPORTED_RUNTIMES: tuple[str, ...] = ("torch",)
MAX_REPLICAS = 64
_VERSION_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


@dataclass
class _Collector:
    """Errors of one document, with its identity filled in."""

    document_index: int | None
    kind: str
    name: str
    errors: list[FieldError] = field(default_factory=list)

    def add(self, path: str, message: str, context: str = "") -> None:
        self.errors.append(
            FieldError(self.document_index, self.kind, self.name, path, message, context)
        )


def validate_resource(
    resource: Resource, document_index: int, index: ResourceIndex
) -> list[FieldError]:
    """Every problem of one (normalized) document; references resolve against `index`."""
    if resource.WhichOneof("kind") is None:
        return [FieldError(document_index, "", "", "kind", "document has no kind set")]
    obj = unwrap(resource)
    out = _Collector(document_index, kind_of(resource), obj.metadata.name)
    _check_name(out, "metadata.name", obj.metadata.name)
    if isinstance(obj, Model):
        _check_model(out, obj)
    elif isinstance(obj, Environment):
        _check_policies(out, obj.spec.policies, index, on_environment=True)
    elif isinstance(obj, Deployment):
        _check_deployment(out, obj, index)
    else:
        _check_region(out, obj)
    return out.errors


def validate_resources(resources: Sequence[Resource], index: ResourceIndex) -> list[FieldError]:
    """Every problem of a whole request: each document, duplicates, and what it would break."""
    errors: list[FieldError] = []
    first: dict[ResourceKey, int] = {}
    for position, resource in enumerate(resources):
        errors.extend(validate_resource(resource, position, index))
        if resource.WhichOneof("kind") is None:
            continue
        key = key_of(resource)
        if key in first:
            errors.append(
                FieldError(
                    position,
                    key.kind,
                    key.name,
                    "metadata.name",
                    f"{key} appears twice in this apply "
                    f"(documents #{first[key] + 1} and #{position + 1})",
                )
            )
        else:
            first[key] = position
        obj = unwrap(resource)
        if isinstance(obj, Model):
            errors.extend(_versions_still_used(position, obj, index))
    return errors


def _check_name(out: _Collector, path: str, name: str) -> None:
    problem = dns1123_label_problem(name)
    if problem:
        out.add(path, problem)


def _check_model(out: _Collector, model: Model) -> None:
    versions = model.spec.versions
    if not versions:
        out.add("spec.versions", "a model needs at least one version")
    seen: dict[str, int] = {}
    for i, version in enumerate(versions):
        path = f"spec.versions[{i}]"
        context = f"version '{version.name}'" if version.name else ""
        if not version.name:
            out.add(f"{path}.name", "a version needs a name", context)
        elif not _VERSION_NAME.match(version.name):
            out.add(
                f"{path}.name",
                f"'{version.name}' is not a valid version name: use letters, digits, '.', '_' "
                "and '-', starting and ending with a letter or digit (at most 63)",
                context,
            )
        elif version.name in seen:
            out.add(
                f"{path}.name",
                f"version name '{version.name}' is already used by "
                f"spec.versions[{seen[version.name]}]",
                context,
            )
        else:
            seen[version.name] = i
        _check_version(out, path, version, context)


def _check_version(out: _Collector, path: str, version: ModelVersion, context: str) -> None:
    if not version.runtime:
        supported = ", ".join(SUPPORTED_RUNTIMES)
        out.add(f"{path}.runtime", f"runtime is required ({supported})", context)
    elif version.runtime not in RUNTIMES:
        out.add(
            f"{path}.runtime",
            f"unknown runtime '{version.runtime}' (expected one of {', '.join(RUNTIMES)})",
            context,
        )
    elif version.runtime not in SUPPORTED_RUNTIMES:
        out.add(f"{path}.runtime", f"runtime '{version.runtime}' is not supported yet", context)
    if not version.path:
        out.add(f"{path}.path", "path is required", context)
    elif not os.path.isabs(version.path):
        out.add(
            f"{path}.path",
            f"'{version.path}' is relative; give an absolute path (every agent reads it)",
            context,
        )
    elif not os.path.exists(version.path):
        out.add(f"{path}.path", f"file {version.path} does not exist", context)
    elif version.runtime == "torch" and not os.path.isfile(version.path):
        out.add(f"{path}.path", f"{version.path} is not a file (expected TorchScript)", context)
    for side in ("inputs", "outputs"):
        tensors: Sequence[TensorSpec] = getattr(version.signature, side)
        _check_tensors(out, f"{path}.signature.{side}", tensors, context)


def _check_tensors(out: _Collector, path: str, tensors: Sequence[TensorSpec], context: str) -> None:
    seen: set[str] = set()
    for i, tensor in enumerate(tensors):
        here = f"{path}[{i}]"
        if not tensor.name:
            out.add(f"{here}.name", "a tensor needs a name", context)
        elif tensor.name in seen:
            out.add(f"{here}.name", f"tensor name '{tensor.name}' is used twice", context)
        seen.add(tensor.name)
        if tensor.datatype not in OIP_DATATYPES:
            allowed = ", ".join(sorted(OIP_DATATYPES))
            out.add(
                f"{here}.datatype",
                f"'{tensor.datatype}' is not an Open Inference Protocol datatype ({allowed})",
                context,
            )
        for j, size in enumerate(tensor.shape):
            if size < -1 or size == 0:
                out.add(
                    f"{here}.shape[{j}]",
                    f"must be -1 (any size) or a positive size, got {size}",
                    context,
                )


def _check_deployment(out: _Collector, dep: Deployment, index: ResourceIndex) -> None:
    spec = dep.spec
    problem = dns1123_label_problem(spec.environment)
    if problem:
        out.add("spec.environment", problem)
    elif spec.environment not in index.environments:
        out.add("spec.environment", f"environment '{spec.environment}' does not exist")
    if not spec.model:
        out.add("spec.model", "model is required")
    elif spec.model not in index.models:
        out.add("spec.model", f"model '{spec.model}' does not exist")
    elif not spec.version:
        out.add("spec.version", "version is required")
    else:
        names = [v.name for v in index.models[spec.model].spec.versions]
        if spec.version not in names:
            out.add(
                "spec.version",
                f"model '{spec.model}' has no version '{spec.version}' "
                f"(versions: {', '.join(names) or 'none'})",
            )
    if not 0 <= spec.replicas <= MAX_REPLICAS:
        out.add("spec.replicas", f"must be between 0 and {MAX_REPLICAS}, got {spec.replicas}")
    _check_policies(out, spec.policies, index, on_environment=False)


def _check_policies(
    out: _Collector, policies: Sequence[Policy], index: ResourceIndex, *, on_environment: bool
) -> None:
    seen_types: dict[str, int] = {}
    for i, policy in enumerate(policies):
        path = f"spec.policies[{i}]"
        if on_environment and policy.mode not in POLICY_MODES:
            out.add(
                f"{path}.mode",
                f"unknown mode '{policy.mode}' (expected {MODE_MANDATORY} or {MODE_OPTIONAL})",
            )
        elif not on_environment and policy.mode:
            out.add(f"{path}.mode", "mode is set on environment policies only")
        rule = policy.WhichOneof("rule")
        if rule is None:
            out.add(path, "a policy needs a rule (location)")
            continue
        if rule in seen_types:
            out.add(
                f"{path}.{rule}",
                f"a second {rule} policy (first at spec.policies[{seen_types[rule]}]); "
                "put it into one policy",
            )
        seen_types.setdefault(rule, i)
        location = policy.location
        for j, region in enumerate(location.regions):
            if region not in index.regions:
                known = ", ".join(sorted(index.regions)) or "none"
                out.add(
                    f"{path}.location.regions[{j}]",
                    f"unknown region '{region}' (registered: {known})",
                )
        for j, country in enumerate(location.countries):
            if not _COUNTRY.match(country):
                out.add(
                    f"{path}.location.countries[{j}]",
                    f"'{country}' is not an ISO 3166-1 alpha-2 country code such as DE",
                )


def _check_region(out: _Collector, region: Region) -> None:
    country = region.spec.country
    if country and not _COUNTRY.match(country):
        out.add("spec.country", f"'{country}' is not an ISO 3166-1 alpha-2 country code such as DE")


def _versions_still_used(position: int, model: Model, index: ResourceIndex) -> list[FieldError]:
    """A model document that drops a version a stored deployment still runs."""
    name = model.metadata.name
    if index.document_of(ResourceKey(KIND_MODEL, name)) != position:
        return []  # a duplicate document; reported as such
    versions = {v.name for v in model.spec.versions}
    errors = []
    for (env, dep_name), dep in sorted(index.deployments.items()):
        key = ResourceKey(KIND_DEPLOYMENT, dep_name, env)
        if index.document_of(key) is not None:
            continue  # in the request: its own reference check reports it
        if dep.spec.model == name and dep.spec.version not in versions:
            errors.append(
                FieldError(
                    position,
                    KIND_MODEL,
                    name,
                    "spec.versions",
                    f"version '{dep.spec.version}' is still used by {key}; "
                    "keep it until the deployment moves to another version",
                )
            )
    return errors
