"""One real network (control plane, two regions with Envoy and Torch workers) per module.

Each test deploys its own deployment names and removes them, so tests do not
depend on each other's leftovers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.harness.mesh import Mesh, running_mesh
from workers.demo import build_mlp


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with running_mesh(tmp_path_factory.mktemp("mesh")) as m:
        yield m


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two versions of the demo MLP with different weights."""
    root = tmp_path_factory.mktemp("models")
    return {
        "v1": build_mlp(root / "mlp-v1.pt", seed=0),
        "v2": build_mlp(root / "mlp-v2.pt", seed=1),
    }


def local_torch(path: Path, batch: torch.Tensor) -> torch.Tensor:
    """What the model computes without meshline in between."""
    model = torch.jit.load(str(path))
    with torch.inference_mode():
        result: torch.Tensor = model(batch)
    return result


# These tests are about serving, not about who may call (tests/e2e/test_edge_access.py is):
# their environments let anyone in, as a user writes it.
OPEN_ACCESS = "access: {anonymous: true}"


def deployment_yaml(
    name: str,
    models: dict[str, Path],
    version: str,
    regions: list[str],
    replicas: int = 1,
    environment: str = "production",
    scaling: str = "",
    memory: str = "",
    packing: str = "",
) -> str:
    """`scaling` (flow-style YAML, e.g. "{min_replicas: 0, max_replicas: 2}") replaces
    `replicas` with the autoscaler; `memory` is what one worker declares (resources.memory);
    `packing` is resources.packing ("shared": the model goes into a shared worker)."""
    resources = ", ".join(
        f"{field}: {value}" for field, value in (("memory", memory), ("packing", packing)) if value
    )
    versions = "\n".join(
        f"""    - name: {v}
      runtime: torch
      path: {p}
      signature:
        inputs: [{{name: input, datatype: FP32, shape: [-1, 784]}}]
        outputs: [{{name: output, datatype: FP32, shape: [-1, 10]}}]"""
        for v, p in models.items()
    )
    return f"""\
kind: Environment
metadata: {{name: {environment}}}
spec:
  policies:
    - {OPEN_ACCESS}
---
kind: Model
metadata: {{name: mlp-{name}}}
spec:
  versions:
{versions}
---
kind: Deployment
metadata: {{name: {name}}}
spec:
  environment: {environment}
  model: mlp-{name}
  version: {version}
  {f"scaling: {scaling}" if scaling else f"replicas: {replicas}"}
  {f"resources: {{{resources}}}" if resources else ""}
  policies:
    - location: {{regions: [{", ".join(regions)}]}}
"""
