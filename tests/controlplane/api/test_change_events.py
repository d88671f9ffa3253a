"""What the audit log says an apply changed in a deployment (change_events.py)."""

from __future__ import annotations

import pytest

from controlplane.api.change_events import deployment_change
from controlplane.api.rule_types import DeploymentFacts


@pytest.mark.parametrize(
    ("before", "version", "replicas", "text"),
    [
        (None, "v1", 2, "version v1, replicas 2"),
        (DeploymentFacts("v1", 2), "v2", 2, "version v1 -> v2"),
        (DeploymentFacts("v1", 2), "v1", 4, "replicas 2 -> 4"),
        (DeploymentFacts("v1", 2), "v2", 1, "version v1 -> v2, replicas 2 -> 1"),
        (DeploymentFacts("v1", 2), "v1", 2, ""),
    ],
)
def test_deployment_change(
    before: DeploymentFacts | None, version: str, replicas: int, text: str
) -> None:
    assert deployment_change(before, version, replicas) == text
