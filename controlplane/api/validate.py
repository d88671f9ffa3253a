"""Checks of each document against the rules and against what will exist after the apply."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Sequence

from controlplane.api.bounds import bound_of, check_bounds, within
from controlplane.api.errors import DocumentErrors, FieldError
from controlplane.api.index import ResourceIndex
from controlplane.api.policy_checks import check_policies, check_region
from controlplane.api.rollout_checks import check_rollout
from controlplane.api.scaling_checks import check_resources, check_scaling
from controlplane.registry.huggingface import source_problems
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
    BatchingSpec,
    Deployment,
    DeploymentSpec,
    Environment,
    Model,
    ModelVersion,
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
_VERSION_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


def validate_resource(
    resource: Resource, document_index: int, index: ResourceIndex
) -> list[FieldError]:
    """Every problem of one (normalized) document; references resolve against `index`."""
    if resource.WhichOneof("kind") is None:
        return [FieldError(document_index, "", "", "kind", "document has no kind set")]
    obj = unwrap(resource)
    out = DocumentErrors(document_index, kind_of(resource), obj.metadata.name)
    _check_name(out, "metadata.name", obj.metadata.name)
    if isinstance(obj, Model):
        _check_model(out, obj)
    elif isinstance(obj, Environment):
        check_policies(out, obj.spec.policies, index, on_environment=True)
    elif isinstance(obj, Deployment):
        _check_deployment(out, obj, index)
    else:
        check_region(out, obj)
    check_bounds(out, obj.spec, "spec")
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


def _check_name(out: DocumentErrors, path: str, name: str) -> None:
    problem = dns1123_label_problem(name)
    if problem:
        out.add(path, problem)


def _check_model(out: DocumentErrors, model: Model) -> None:
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


def _check_version(out: DocumentErrors, path: str, version: ModelVersion, context: str) -> None:
    if not version.runtime:
        out.add(f"{path}.runtime", f"runtime is required ({', '.join(RUNTIMES)})", context)
    elif version.runtime not in RUNTIMES:
        out.add(
            f"{path}.runtime",
            f"unknown runtime '{version.runtime}' (expected one of {', '.join(RUNTIMES)})",
            context,
        )
    if version.HasField("external"):
        _check_external(out, path, version, context)
    elif version.HasField("huggingface"):
        _check_huggingface(out, path, version, context)
    elif not version.path:
        if not version.sha256:  # else: an artifact in the registry, checked at registration
            out.add(
                f"{path}.path",
                "path is required (or huggingface, sha256 of a pushed artifact, or external: "
                "an existing Triton)",
                context,
            )
    elif not os.path.isabs(version.path):
        out.add(
            f"{path}.path",
            f"'{version.path}' is relative; give an absolute path (every agent reads it)",
            context,
        )
    elif not os.path.exists(version.path):
        if not version.sha256:  # else: registered before; the registry keeps its copy
            out.add(f"{path}.path", f"file {version.path} does not exist", context)
    elif not os.path.isfile(version.path):
        out.add(f"{path}.path", f"{version.path} is not a file (expected TorchScript)", context)
    for side in ("inputs", "outputs"):
        tensors: Sequence[TensorSpec] = getattr(version.signature, side)
        _check_tensors(out, f"{path}.signature.{side}", tensors, context)


def _check_huggingface(out: DocumentErrors, path: str, version: ModelVersion, context: str) -> None:
    """A file of a HuggingFace repo: one origin only; found in the cache at registration."""
    if version.path:
        out.add(f"{path}.path", "give path or huggingface, not both", context)
    for name, message in source_problems(version.huggingface):
        out.add(f"{path}.huggingface.{name}", message, context)


def _check_external(out: DocumentErrors, path: str, version: ModelVersion, context: str) -> None:
    """An existing server: only Triton speaks the protocol we route, and nothing is loaded."""
    here = f"{path}.external"
    if version.runtime and version.runtime != "triton":
        out.add(
            f"{path}.runtime",
            f"external endpoints are Triton servers: runtime must be 'triton', "
            f"not '{version.runtime}'",
            context,
        )
    if version.path:
        out.add(
            f"{path}.path",
            "an external Triton serves its own model: give path or external, not both",
            context,
        )
    ext = version.external
    fields = (("grpc_address", True), ("http_address", True), ("metrics_address", False))
    for name, required in fields:
        value = getattr(ext, name)
        if not value:
            if required:
                out.add(f"{here}.{name}", f"{name} is required (ip:port)", context)
            continue
        problem = ip_port_problem(value)
        if problem:
            out.add(f"{here}.{name}", problem, context)
    grpc_host = ext.grpc_address.rpartition(":")[0]
    http_host = ext.http_address.rpartition(":")[0]
    both_valid = not (ip_port_problem(ext.grpc_address) or ip_port_problem(ext.http_address))
    if both_valid and grpc_host != http_host:
        out.add(
            f"{here}.http_address",
            f"must be on the host of grpc_address ({grpc_host}), got {http_host}: one endpoint "
            "serves both protocols",
            context,
        )


def ip_port_problem(address: str) -> str | None:
    """None for ip:port ([ipv6]:port) with a port in 1..65535, else what is wrong with it.

    Envoy takes endpoints as IP literals only (EDS does not resolve names)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"'{address}' is not ip:port (e.g. 10.0.0.5:8001)"
    try:
        ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return f"'{host}' is not an IP address (gateways route to IP literals; resolve it first)"
    return None


def _check_tensors(
    out: DocumentErrors, path: str, tensors: Sequence[TensorSpec], context: str
) -> None:
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


def _check_deployment(out: DocumentErrors, dep: Deployment, index: ResourceIndex) -> None:
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
    version = _version_of(spec, index)
    _check_batching(out, spec.batching)
    if version is not None:
        _check_serving_fits(out, spec, version)
    check_scaling(out, spec, version)
    check_resources(out, spec, version)
    check_rollout(out, spec)
    check_policies(out, spec.policies, index, on_environment=False, deployment=dep)


def _version_of(spec: DeploymentSpec, index: ResourceIndex) -> ModelVersion | None:
    model = index.models.get(spec.model)
    if model is None:
        return None
    return next((v for v in model.spec.versions if v.name == spec.version), None)


def _check_batching(out: DocumentErrors, batching: BatchingSpec) -> None:
    """Relations between the fields; each one's own range is in bounds.py."""
    here = "spec.batching"
    size = batching.max_batch_size
    sizes = bound_of(BatchingSpec, "preferred_batch_sizes")
    for i, preferred in enumerate(batching.preferred_batch_sizes):
        if (
            within(batching, "max_batch_size")
            and sizes.allows(preferred)
            and preferred > max(size, 1)
        ):
            out.add(
                f"{here}.preferred_batch_sizes[{i}]",
                f"must be between 1 and max_batch_size ({size}), got {preferred}",
            )
    if batching.max_delay_ms and size <= 1:
        out.add(f"{here}.max_delay_ms", "needs max_batch_size above 1 (batching on)")
    if batching.preferred_batch_sizes and size <= 1:
        out.add(f"{here}.preferred_batch_sizes", "needs max_batch_size above 1 (batching on)")
    levels = batching.priority_levels
    if levels > 0 and size <= 1:
        out.add(
            f"{here}.priority_levels",
            "needs max_batch_size above 1: requests are ordered in the batcher's queue",
        )
    if (
        within(batching, "priority_levels")
        and within(batching, "default_priority_level")
        and batching.default_priority_level > levels
    ):
        out.add(
            f"{here}.default_priority_level",
            f"must be between 0 (the lowest level) and priority_levels ({levels}), got "
            f"{batching.default_priority_level}",
        )


def _check_serving_fits(out: DocumentErrors, spec: DeploymentSpec, version: ModelVersion) -> None:
    """Serving settings that this version cannot honour, named at apply time, not at start."""
    where = f"model '{spec.model}' version '{spec.version}'"
    if version.HasField("external"):
        if spec.replicas > 1:
            out.add(
                "spec.replicas",
                f"{where} is an external Triton, one endpoint: replicas must be 0 or 1, got "
                f"{spec.replicas}",
            )
        if spec.HasField("batching"):
            out.add(
                "spec.batching",
                f"{where} is an external Triton: batching is set in its own config.pbtxt",
            )
        if spec.instances:
            out.add(
                "spec.instances",
                f"{where} is an external Triton: instances are set in its own config.pbtxt",
            )
        return
    if spec.batching.max_batch_size > 1:
        for side in ("inputs", "outputs"):
            for tensor in getattr(version.signature, side):
                if not tensor.shape or tensor.shape[0] != -1:
                    out.add(
                        "spec.batching.max_batch_size",
                        f"{where} cannot be batched: {side[:-1]} '{tensor.name}' has shape "
                        f"{list(tensor.shape)}; batching needs -1 as the first dimension",
                    )


def _still_fits(position: int, model: Model, dep: Deployment, key: ResourceKey) -> list[FieldError]:
    """A changed version that a stored deployment's serving settings no longer fit."""
    i, version = next(
        (i, v) for i, v in enumerate(model.spec.versions) if v.name == dep.spec.version
    )
    problems = DocumentErrors(None, KIND_DEPLOYMENT, dep.metadata.name)
    _check_serving_fits(problems, dep.spec, version)
    return [
        FieldError(
            position,
            KIND_MODEL,
            model.metadata.name,
            f"spec.versions[{i}]",
            f"{key} runs this version with {e.field_path}, which it would no longer fit: "
            f"{e.message}",
            f"version '{version.name}'",
        )
        for e in problems.errors
    ]


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
        if dep.spec.model == name and dep.spec.version in versions:
            errors.extend(_still_fits(position, model, dep, key))
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
