"""`meshline models ...` and `meshline release` against a real control plane process."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from tests.cli.helpers import meshline

SIGNATURE = ["--input", "input:FP32:-1,784", "--output", "output:FP32:-1,10"]


def _setup(address: str) -> None:
    text = """\
kind: Region
metadata: {name: eu}
spec: {country: DE}
---
kind: Region
metadata: {name: us}
spec: {country: US}
---
kind: Environment
metadata: {name: development}
---
kind: Environment
metadata: {name: production}
spec:
  policies:
    - {mode: mandatory, location: {regions: [eu]}}
"""
    applied = meshline(address, "apply", "-f", "-", stdin=text)
    assert applied.returncode == 0, applied.stderr


def test_push_list_inspect_and_delete_a_version(
    address: str, model: Path, cp_state: Path, tmp_path: Path
) -> None:
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    pushed = meshline(address, "models", "push", str(model), "-m", "pushed", "-v", "v1", *SIGNATURE)
    assert pushed.returncode == 0, pushed.stderr
    assert f"model/pushed version v1 created: sha256 {sha}" in pushed.stdout
    assert "torchscript" in pushed.stdout
    assert (cp_state / "artifacts" / "sha256" / sha).read_bytes() == model.read_bytes()

    listed = meshline(address, "models", "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.strip().startswith("pushed"))
    assert "v1" in row and "torchscript" in row and sha[:12] in row and "pushed" in row

    versions = json.loads(meshline(address, "models", "versions", "pushed", "-o", "json").stdout)
    assert [(v["name"], v["sha256"], v["size_bytes"]) for v in versions] == [
        ("v1", sha, model.stat().st_size)
    ]
    got = yaml.safe_load(meshline(address, "models", "get", "pushed", "v1").stdout)
    assert got["framework"] == "torchscript" and got["created_at"] and got["used_by"] == []
    assert got["signature"]["inputs"][0] == {
        "name": "input",
        "datatype": "FP32",
        "shape": [-1, 784],
    }

    pulled = tmp_path / "pulled.pt"
    assert meshline(address, "models", "pull", sha, "--out", str(pulled)).returncode == 0
    assert pulled.read_bytes() == model.read_bytes()
    # The short digest `models list` shows works too; one that matches nothing says so.
    short = tmp_path / "short.pt"
    by_prefix = meshline(address, "models", "pull", sha[:12], "--out", str(short))
    assert by_prefix.returncode == 0, by_prefix.stderr
    assert short.read_bytes() == model.read_bytes() and sha in by_prefix.stdout
    other = "0" * 12 if not sha.startswith("0" * 12) else "f" * 12
    unknown = meshline(address, "models", "pull", other, "--out", str(tmp_path / "no.pt"))
    assert unknown.returncode == 1
    assert f"no registered artifact's sha256 starts with '{other}'" in unknown.stderr
    too_short = meshline(address, "models", "pull", sha[:4], "--out", str(tmp_path / "no.pt"))
    assert too_short.returncode == 1
    assert "at least 6 lowercase hex digits" in too_short.stderr, too_short.stderr

    _setup(address)
    dep = "kind: Deployment\nmetadata: {name: pushed}\nspec: {model: pushed, version: v1}\n"
    assert meshline(address, "apply", "-f", "-", stdin=dep).returncode == 0
    refused = meshline(address, "models", "delete-version", "pushed", "v1")
    assert refused.returncode == 1
    assert "is used by deployment 'pushed' in environment 'production'" in refused.stderr
    assert "FAILED_PRECONDITION" in refused.stderr

    assert meshline(address, "delete", "deployment", "pushed").returncode == 0
    deleted = meshline(address, "models", "delete-version", "pushed", "v1")
    assert deleted.returncode == 0, deleted.stderr
    assert "artifact removed" in deleted.stdout and "model/pushed deleted" in deleted.stdout
    assert not (cp_state / "artifacts" / "sha256" / sha).exists()


def test_push_needs_a_signature_and_an_existing_file(address: str, model: Path) -> None:
    no_sig = meshline(address, "models", "push", str(model), "-m", "x", "-v", "v1")
    assert no_sig.returncode == 1 and "needs a signature" in no_sig.stderr
    missing = meshline(address, "models", "push", "/nope.pt", "-m", "x", "-v", "v1", *SIGNATURE)
    assert missing.returncode == 1 and "/nope.pt: no such file" in missing.stderr


def test_push_takes_the_signature_from_a_model_file(
    address: str, model: Path, tmp_path: Path
) -> None:
    sig = tmp_path / "sig.yaml"
    sig.write_text(
        "inputs: [{name: input, datatype: FP32, shape: [-1, 784]}]\n"
        "outputs: [{name: output, datatype: FP32, shape: [-1, 10]}]\n"
    )
    args = ["models", "push", str(model), "-m", "sigfile", "-v", "v1", "--signature-from"]
    pushed = meshline(address, *args, str(sig))
    assert pushed.returncode == 0, pushed.stderr
    assert meshline(address, "delete", "model", "sigfile").returncode == 0


def test_release_with_and_without_a_policy_violation(address: str, model: Path) -> None:
    _setup(address)
    text = f"""\
kind: Model
metadata: {{name: rel}}
spec:
  versions:
    - name: v1
      runtime: torch
      path: {model}
      signature:
        inputs: [{{name: input, datatype: FP32, shape: [-1, 784]}}]
        outputs: [{{name: output, datatype: FP32, shape: [-1, 10]}}]
---
kind: Deployment
metadata: {{name: rel}}
spec:
  environment: development
  model: rel
  version: v1
  replicas: 2
  policies: [{{location: {{regions: [us]}}}}]
"""
    assert meshline(address, "apply", "-f", "-", stdin=text).returncode == 0
    refused = meshline(address, "release", "rel", "--from", "development", "--to", "production")
    assert refused.returncode == 1
    assert "cannot release deployment 'rel' from 'development' to 'production'" in refused.stderr
    assert "environment 'production' mandatory" in refused.stderr
    got = meshline(address, "get", "deployments", "-e", "production", "-o", "json")
    assert "rel" not in [d["metadata"]["name"] for d in json.loads(got.stdout)]

    fixed = text.replace("regions: [us]", "regions: [eu, us]")
    assert meshline(address, "apply", "-f", "-", stdin=fixed).returncode == 0
    dry = meshline(
        address, "release", "rel", "--from", "development", "--to", "production", "--dry-run"
    )
    assert dry.returncode == 0, dry.stderr
    assert "created (dry run) → eu" in dry.stdout
    released = meshline(address, "release", "rel", "--from", "development", "--to", "production")
    assert released.returncode == 0, released.stderr
    assert "deployment/rel released from development to production: created → eu" in (
        released.stdout
    )
    prod = json.loads(
        meshline(address, "get", "deployments", "rel", "-e", "production", "-o", "json").stdout
    )
    assert prod["spec"]["replicas"] == 2
    assert prod["spec"]["environment"] == "production"
    for env in ("production", "development"):
        assert meshline(address, "delete", "deployment", "rel", "-e", env).returncode == 0
    assert meshline(address, "delete", "model", "rel").returncode == 0
