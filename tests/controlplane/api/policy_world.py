"""The stored world of the policy apply tests, and how to build their documents."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from controlplane.api import ApplyError, FieldError, apply_resources, plan_apply
from controlplane.store import Store
from meshline.v1.api_pb2 import Resource
from tests.controlplane.store.builders import (
    deployment,
    environment,
    model,
    model_file,
    policy,
    region,
)


@contextmanager
def world(tmp_path: Path) -> Iterator[Store]:
    """eu (DE, EU; cpu c5, gpu a100), us (US, NA; cpu c5, m5), production, mnist v1-v3, and
    deployment mnist (v1, 1 replica, no policies)."""
    artifact = model_file(tmp_path)
    with Store.open(tmp_path / "store.db") as s:
        apply_resources(
            s,
            [
                region("eu", "DE", "EU", cpu=["c5"], gpu=["a100"]),
                region("us", "US", "NA", cpu=["c5", "m5"]),
                environment("production"),
                model("mnist", [("v1", artifact), ("v2", artifact), ("v3", artifact)]),
                deployment("mnist", "mnist", "v1"),
            ],
        )
        yield s


def errors_of(store: Store, docs: list[Resource]) -> list[FieldError]:
    with pytest.raises(ApplyError) as caught:
        plan_apply(docs, store.snapshot())
    return caught.value.errors


def dep(*rules: dict[str, Any], version: str = "v1", replicas: int = 1) -> Resource:
    """Deployment 'd' of mnist in production with these policies (YAML form)."""
    return deployment("d", "mnist", version, replicas=replicas, policies=[policy(r) for r in rules])


def env(*rules: dict[str, Any], name: str = "staging", mode: str = "mandatory") -> Resource:
    return environment(name, [policy(r, mode) for r in rules])


def split(**weights: int) -> list[dict[str, Any]]:
    return [{"version": v, "weight": w} for v, w in weights.items()]
