"""A small world for the policy table tests: six regions on three continents, with flavors.

| region     | country | continent | cpu      | gpu        |
|------------|---------|-----------|----------|------------|
| ap-tokyo   | JP      | AS        |          | h100       |
| de-north   | DE      | EU        |          | h100       |
| eu-central | DE      | EU        | c5       |            |
| eu-west    | FR      | EU        | c5, m5   | a100       |
| us-east    | US      | NA        | m5       | a100, h100 |
| us-west    | US      | NA        | c5, t3   |            |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meshline.v1.resources_pb2 import Deployment, Environment, Policy, Region
from tests.controlplane.store.builders import policy, region

M = "mandatory"
O = "optional"  # noqa: E741

_FACTS: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    "ap-tokyo": ("JP", "AS", (), ("h100",)),
    "de-north": ("DE", "EU", (), ("h100",)),
    "eu-central": ("DE", "EU", ("c5",), ()),
    "eu-west": ("FR", "EU", ("c5", "m5"), ("a100",)),
    "us-east": ("US", "NA", ("m5",), ("a100", "h100")),
    "us-west": ("US", "NA", ("c5", "t3"), ()),
}
ALL = tuple(sorted(_FACTS))


def regions(capacity: dict[str, int] | None = None) -> list[Region]:
    """Every region of the world; `capacity` sets max_replicas by region name."""
    caps = capacity or {}
    return [
        region(name, country, continent, cpu, gpu, caps.get(name, 0)).region
        for name, (country, continent, cpu, gpu) in _FACTS.items()
    ]


def by_name(name: str) -> Region:
    return next(r for r in regions() if r.metadata.name == name)


def rule(yaml_form: dict[str, Any], mode: str = "") -> Policy:
    return policy(yaml_form, mode)


def env(policies: Sequence[Policy] = (), name: str = "production") -> Environment:
    out = Environment()
    out.metadata.name = name
    out.spec.policies.extend(policies)
    return out


def dep(
    policies: Sequence[Policy] = (),
    name: str = "mnist",
    version: str = "v1",
    replicas: int = 1,
    created_at: str = "",
    environment: str = "production",
) -> Deployment:
    out = Deployment()
    out.metadata.name = name
    out.metadata.created_at = created_at
    out.spec.environment = environment
    out.spec.model = "mnist"
    out.spec.version = version
    out.spec.replicas = replicas
    out.spec.policies.extend(policies)
    return out
