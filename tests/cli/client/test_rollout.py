"""`meshline rollout retry` and re-applying a version after `rollout undo`, against a real
control plane restarted in between (no regions running: a rollout starts and waits)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import control_plane, meshline
from tests.harness.processes import wait_until

NAME = "retried"


def _docs(model: Path, version: str) -> str:
    versions = "\n".join(
        f"""    - name: {v}
      runtime: torch
      path: {model}
      signature:
        inputs: [{{name: input, datatype: FP32, shape: [-1, 784]}}]
        outputs: [{{name: output, datatype: FP32, shape: [-1, 10]}}]"""
        for v in ("v1", "v2")
    )
    return f"""\
kind: Region
metadata: {{name: eu}}
spec: {{country: DE}}
---
kind: Environment
metadata: {{name: production}}
---
kind: Model
metadata: {{name: {NAME}}}
spec:
  versions:
{versions}
---
kind: Deployment
metadata: {{name: {NAME}}}
spec:
  environment: production
  model: {NAME}
  version: {version}
  replicas: 1
"""


def _apply(address: str, file: Path, model: Path, version: str) -> None:
    file.write_text(_docs(model, version))
    applied = meshline(address, "apply", "-f", str(file))
    assert applied.returncode == 0, applied.stderr


def _wait_summary(address: str, text: str) -> None:
    """The rollout controller starts a rollout at the rebuild after an apply."""
    wait_until(
        lambda: text in meshline(address, "rollout", "status", NAME).stdout,
        30,
        f"rollout status to say {text!r}",
    )


def test_retry_and_reapply_after_undo_roll_a_refused_version_out_again(
    model: Path, tmp_path: Path
) -> None:
    state, file = tmp_path / "cp", tmp_path / "app.yaml"
    with control_plane(state) as address:
        _apply(address, file, model, "v1")
        none = meshline(address, "rollout", "retry", NAME)
        assert none.returncode == 1
        assert (
            f"deployment '{NAME}' has no rolled-back version to retry: it has had no rollout"
            in none.stderr
        )
        assert "[FAILED_PRECONDITION]" in none.stderr
        _apply(address, file, model, "v2")
        _wait_summary(address, "rollout #1 v1 → v2 (immediate): Progressing")
        assert meshline(address, "rollout", "abort", NAME).returncode == 0
        retried = meshline(address, "rollout", "retry", NAME)
        assert retried.returncode == 0, retried.stderr
        assert "rollout #2 v1 → v2 (immediate, retry of #1): Progressing" in retried.stdout
        status = meshline(address, "rollout", "status", NAME)
        assert "retry of #1" in status.stdout and "Aborted" in status.stdout
        again = meshline(address, "rollout", "retry", NAME)
        assert again.returncode == 1 and "its rollout v1 → v2 is progressing" in again.stderr
        assert meshline(address, "rollout", "abort", NAME).returncode == 0
        undone = meshline(address, "rollout", "undo", NAME)
        assert undone.returncode == 0, undone.stderr
        assert (
            f"deployment/{NAME}: version set back to 'v1', which serves already; applying "
            "version 'v2' again rolls it out anew"
        ) in " ".join(undone.stdout.split())
    # A restart between the undo and the re-apply: what the undo ended stays ended.
    with control_plane(state) as address:
        refused = meshline(address, "rollout", "retry", NAME)
        assert refused.returncode == 1
        assert "version 'v2' was aborted, but the deployment now names 'v1'" in refused.stderr
        _apply(address, file, model, "v2")
        _wait_summary(address, "rollout #3 v1 → v2 (immediate): Progressing")
        history = meshline(address, "rollout", "status", NAME).stdout
        assert [line.split()[:1] for line in history.splitlines()[-3:]] == [["3"], ["2"], ["1"]]
