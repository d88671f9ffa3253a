"""The `meshline` command against a real control plane (no regions running: apply/get/delete)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.cli.helpers import meshline
from tests.harness.processes import free_port


def _docs(model: Path, name: str, extra_spec: str = "") -> str:
    return f"""\
kind: Region
metadata: {{name: eu}}
spec: {{country: DE}}
---
kind: Environment
metadata: {{name: production}}
---
kind: Model
metadata: {{name: {name}}}
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
metadata: {{name: {name}}}
spec:
  environment: production
  model: {name}
  version: v1
  replicas: 1{extra_spec}
"""


def test_apply_get_delete_round_trip(address: str, model: Path, tmp_path: Path) -> None:
    file = tmp_path / "app.yaml"
    file.write_text(_docs(model, "round"))
    dry = meshline(address, "apply", "-f", str(file), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "deployment/round created (dry run) → eu" in dry.stdout
    got = meshline(address, "get", "deployments", "-o", "json")
    assert "round" not in got.stdout, "a dry run must store nothing"

    applied = meshline(address, "apply", "-f", str(file))
    assert applied.returncode == 0, applied.stderr
    assert "model/round created" in applied.stdout
    again = meshline(address, "apply", "-f", str(file))
    assert "deployment/round unchanged" in again.stdout

    listed = json.loads(meshline(address, "get", "deployments", "-o", "json").stdout)
    mine = next(d for d in listed if d["metadata"]["name"] == "round")
    assert mine["spec"]["model"] == "round"
    # No agent runs region eu: status says so instead of pretending.
    assert mine["status"]["phase"] == "Pending"
    assert "eu" in mine["status"]["message"]
    as_yaml = yaml.safe_load(meshline(address, "get", "models", "round", "-o", "yaml").stdout)
    assert as_yaml["kind"] == "Model"
    assert as_yaml["spec"]["versions"][0]["path"] == str(model)
    # What `get -o yaml` prints can be applied again, unchanged (as with kubectl).
    dumped = meshline(address, "get", "deployments", "-o", "yaml").stdout
    again_from_get = meshline(address, "apply", "-f", "-", stdin=dumped)
    assert again_from_get.returncode == 0, again_from_get.stderr
    assert "deployment/round unchanged" in again_from_get.stdout
    model_doc = meshline(address, "get", "model", "round", "-o", "yaml").stdout
    assert yaml.safe_load(model_doc)["spec"]["versions"][0]["signature"]["inputs"][0]["shape"] == [
        -1,
        784,
    ]
    model_again = meshline(address, "apply", "-f", "-", stdin=model_doc)
    assert model_again.returncode == 0, model_again.stderr
    assert "model/round unchanged" in model_again.stdout
    table = meshline(address, "get", "regions").stdout
    assert "eu" in table and "disconnected" in table

    refused_env = meshline(address, "delete", "environment", "production")
    assert refused_env.returncode == 1 and "round" in refused_env.stderr
    refused = meshline(address, "delete", "model", "round")
    assert refused.returncode == 1 and "round" in refused.stderr  # still used by the deployment
    assert meshline(address, "delete", "deployment", "round").returncode == 0
    assert meshline(address, "delete", "model", "round").returncode == 0
    missing = meshline(address, "get", "models", "round")
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_malformed_yaml_names_the_file(address: str, tmp_path: Path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text("kind: Model\nmetadata: {name: x\n")
    result = meshline(address, "apply", "-f", str(file))
    assert result.returncode == 1
    assert "broken.yaml" in result.stderr and "malformed YAML" in result.stderr


def test_unknown_field_names_file_document_and_field(
    address: str, model: Path, tmp_path: Path
) -> None:
    file = tmp_path / "typo.yaml"
    file.write_text(_docs(model, "typo", extra_spec="\n  replicaz: 3"))
    result = meshline(address, "apply", "-f", str(file))
    assert result.returncode == 1
    assert "typo.yaml" in result.stderr and "document 4" in result.stderr
    assert "replicaz" in result.stderr
    listed = meshline(address, "get", "models", "-o", "json").stdout
    assert "typo" not in listed, "nothing of a rejected file is stored"


def test_bad_values_are_rejected_all_or_nothing(address: str, model: Path, tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    text = (
        _docs(model, "badval")
        .replace("replicas: 1", "replicas: -2")
        .replace(f"path: {model}", "path: /nowhere/model.pt")
    )
    file.write_text(text)
    result = meshline(address, "apply", "-f", str(file))
    assert result.returncode == 1
    assert "/nowhere/model.pt" in result.stderr and "replicas" in result.stderr
    # Errors found by the server still point at the file and document they came from.
    assert "bad.yaml document 3: model 'badval'" in result.stderr
    assert "bad.yaml document 4: deployment 'badval'" in result.stderr
    assert "badval" not in meshline(address, "get", "models", "-o", "json").stdout


def test_unreachable_control_plane_is_a_clear_error() -> None:
    result = meshline(f"127.0.0.1:{free_port()}", "get", "deployments")
    assert result.returncode == 1
    assert "cannot reach the control plane" in result.stderr


def _controlplane(listen: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "controlplane",
            "--listen",
            listen,
            "--state-dir",
            str(state),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_second_control_plane_is_refused(address: str, cp_state: Path, tmp_path: Path) -> None:
    same_store = _controlplane(f"127.0.0.1:{free_port()}", cp_state)
    assert same_store.returncode == 1
    assert "already in use by pid" in same_store.stderr
    same_port = _controlplane(address, tmp_path / "other")
    assert same_port.returncode == 1
    assert f"cannot listen on {address}" in same_port.stderr
    assert meshline(address, "get", "regions").returncode == 0  # the first one is unharmed


def test_delete_by_file(address: str, model: Path, tmp_path: Path) -> None:
    file = tmp_path / "app.yaml"
    file.write_text(_docs(model, "byfile"))
    assert meshline(address, "apply", "-f", str(file)).returncode == 0
    # Drop the shared Region/Environment documents: only what this app owns is deleted.
    file.write_text("---".join(_docs(model, "byfile").split("---")[2:]))
    result = meshline(address, "delete", "-f", str(file))
    assert result.returncode == 0, result.stderr
    assert "deployment/byfile deleted" in result.stdout
    assert result.stdout.index("deployment/byfile") < result.stdout.index("model/byfile")
    assert "byfile" not in meshline(address, "get", "models", "-o", "json").stdout


def test_delete_by_file_is_all_or_nothing(address: str, model: Path, tmp_path: Path) -> None:
    file = tmp_path / "app.yaml"
    file.write_text(_docs(model, "whole"))
    assert meshline(address, "apply", "-f", str(file)).returncode == 0
    other = tmp_path / "other.yaml"
    other.write_text(
        _docs(model, "other").split("---", 3)[3].replace("model: other", "model: whole")
    )
    assert meshline(address, "apply", "-f", str(other)).returncode == 0
    # The file's model is also used by deployment 'other', which the file does not name.
    model_and_deployment = "---".join(_docs(model, "whole").split("---")[2:])
    file.write_text(model_and_deployment)
    refused = meshline(address, "delete", "-f", str(file))
    assert refused.returncode == 1
    assert "nothing was deleted" in refused.stderr
    assert "model 'whole' is used by deployment 'other' in environment 'production'" in (
        refused.stderr
    )
    assert refused.stdout == ""
    listed = json.loads(meshline(address, "get", "deployments", "-o", "json").stdout)
    assert {d["metadata"]["name"] for d in listed} >= {"whole", "other"}

    dry = meshline(address, "delete", "-f", str(file), "-f", str(other), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "deployment/whole deleted (dry run)",
        "deployment/other deleted (dry run)",
        "model/whole deleted (dry run)",
    ]
    done = meshline(address, "delete", "-f", str(other), "-f", str(file))
    assert done.returncode == 0, done.stderr
    again = meshline(address, "delete", "-f", str(file))
    assert again.returncode == 1 and "model 'whole' not found" in again.stderr
    assert "[NOT_FOUND]" in again.stderr
    ignored = meshline(address, "delete", "-f", str(file), "--ignore-not-found")
    assert ignored.returncode == 0, ignored.stderr
    assert "model/whole not found" in ignored.stdout


def test_an_environment_change_that_strands_a_deployment_names_its_file(
    address: str, model: Path, tmp_path: Path
) -> None:
    assert meshline(address, "apply", "-f", "-", stdin=_docs(model, "stranded")).returncode == 0
    env = tmp_path / "env.yaml"
    env.write_text(
        "kind: Environment\nmetadata: {name: production}\n"
        "spec: {policies: [{mode: mandatory, location: {countries: [JP]}}]}\n"
    )
    refused = meshline(address, "apply", "-f", str(env))
    assert refused.returncode == 1
    assert (
        f"{env} document 1: environment 'production': spec.policies: this apply would leave "
        "deployment 'stranded' running nowhere"
    ) in refused.stderr, refused.stderr
    assert meshline(address, "delete", "deployment", "stranded").returncode == 0
    assert meshline(address, "delete", "model", "stranded").returncode == 0


def test_deactivate_and_activate_keep_the_configuration(
    address: str, model: Path, tmp_path: Path
) -> None:
    file = tmp_path / "app.yaml"
    file.write_text(_docs(model, "pausable"))
    assert meshline(address, "apply", "-f", str(file)).returncode == 0
    before = yaml.safe_load(meshline(address, "get", "deployment", "pausable", "-o", "yaml").stdout)
    off = meshline(address, "deactivate", "pausable")
    assert off.returncode == 0, off.stderr
    assert "deployment/pausable (production) deactivated" in off.stdout
    again = meshline(address, "deactivate", "pausable")
    assert "already deactivated" in again.stdout
    stored = yaml.safe_load(meshline(address, "get", "deployment", "pausable", "-o", "yaml").stdout)
    assert stored["spec"]["deactivated"] is True
    on = meshline(address, "activate", "pausable")
    assert on.returncode == 0 and "deployment/pausable (production) activated" in on.stdout
    after = yaml.safe_load(meshline(address, "get", "deployment", "pausable", "-o", "yaml").stdout)
    assert after["spec"] == before["spec"]
    missing = meshline(address, "deactivate", "nope")
    assert missing.returncode == 1 and "nope" in missing.stderr
    assert meshline(address, "delete", "deployment", "pausable").returncode == 0
    assert meshline(address, "delete", "model", "pausable").returncode == 0


def test_rollout_status_history_and_control(address: str, model: Path, tmp_path: Path) -> None:
    file = tmp_path / "app.yaml"
    file.write_text(_docs(model, "rolling"))
    assert meshline(address, "apply", "-f", str(file)).returncode == 0
    none = meshline(address, "rollout", "status", "rolling")
    assert none.returncode == 0 and "has had no rollout" in none.stdout
    # A second version: an immediate rollout starts; no agent runs region eu, so it waits.
    two = (
        _docs(model, "rolling")
        .replace(
            "    - name: v1\n",
            "    - name: v2\n      runtime: torch\n      path: "
            f"{model}\n      signature:\n        inputs: [{{name: input, datatype: FP32, "
            "shape: [-1, 784]}]\n        outputs: [{name: output, datatype: FP32, shape: [-1, "
            "10]}]\n    - name: v1\n",
        )
        .replace("  version: v1", "  version: v2")
    )
    file.write_text(two)
    assert meshline(address, "apply", "-f", str(file)).returncode == 0
    status = meshline(address, "rollout", "status", "rolling")
    assert "rollout #1 v1 → v2 (immediate): Progressing" in status.stdout, status.stdout
    refused = meshline(address, "rollout", "pause", "rolling")
    assert refused.returncode == 1 and "is immediate: it has no steps to pause" in refused.stderr
    aborted = meshline(address, "rollout", "abort", "rolling")
    assert aborted.returncode == 0 and "Aborted" in aborted.stdout
    undone = meshline(address, "rollout", "undo", "rolling")
    assert undone.returncode == 0 and "version set back to 'v1'" in undone.stdout
    got = yaml.safe_load(meshline(address, "get", "deployment", "rolling", "-o", "yaml").stdout)
    assert got["spec"]["version"] == "v1"
    again = meshline(address, "rollout", "undo", "rolling")
    assert again.returncode == 0  # after an abort, undo names the stable version again
    assert meshline(address, "delete", "deployment", "rolling").returncode == 0
    assert meshline(address, "delete", "model", "rolling").returncode == 0
