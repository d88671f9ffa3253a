"""`meshline get deployments` pages through ListDeployments: more deployments than one page
holds all come out, once each, in order."""

from __future__ import annotations

import json
from pathlib import Path

from cli.client.resources import DEPLOYMENTS_PAGE
from tests.cli.helpers import meshline


def test_get_deployments_follows_every_page(address: str, model: Path, tmp_path: Path) -> None:
    count = DEPLOYMENTS_PAGE + 3
    head = f"""\
kind: Region
metadata: {{name: eu}}
spec: {{country: DE}}
---
kind: Environment
metadata: {{name: paging}}
---
kind: Model
metadata: {{name: paged}}
spec:
  versions:
    - name: v1
      runtime: torch
      path: {model}
      signature:
        inputs: [{{name: input, datatype: FP32, shape: [-1, 784]}}]
        outputs: [{{name: output, datatype: FP32, shape: [-1, 10]}}]
"""
    deployments = "".join(
        f"---\nkind: Deployment\nmetadata: {{name: p{i:04d}}}\n"
        "spec: {environment: paging, model: paged, version: v1, replicas: 1}\n"
        for i in range(count)
    )
    file = tmp_path / "many.yaml"
    file.write_text(head + deployments)
    applied = meshline(address, "apply", "-f", str(file))
    assert applied.returncode == 0, applied.stderr
    listed = meshline(address, "get", "deployments", "-e", "paging", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    names = [d["metadata"]["name"] for d in json.loads(listed.stdout)]
    assert names == [f"p{i:04d}" for i in range(count)]
    one = meshline(address, "get", "deployments", f"p{count - 1:04d}", "-e", "paging", "-o", "json")
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["metadata"]["name"] == f"p{count - 1:04d}"
