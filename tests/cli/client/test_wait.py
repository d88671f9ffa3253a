"""`meshline wait`: the decision per observation, and the command against a real control plane."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.client.wait import KEEP_WAITING, Condition, Verdict, decide
from tests.cli.helpers import meshline


@pytest.mark.parametrize(
    ("phase", "wanted", "verdict"),
    [
        ("Ready", Condition.Ready, Verdict(done=True)),
        ("Pending", Condition.Ready, KEEP_WAITING),
        ("Failed", Condition.Ready, Verdict(done=True, ok=False)),  # a user must act: stop now
        ("Failed", Condition.Failed, Verdict(done=True)),
        ("Ready", Condition.Deactivated, KEEP_WAITING),
        ("Deactivated", Condition.Deactivated, Verdict(done=True)),
        (None, Condition.Ready, Verdict(done=True, ok=False)),  # gone while waiting
        (None, Condition.Deleted, Verdict(done=True)),
        ("Failed", Condition.Deleted, KEEP_WAITING),
        ("Ready", Condition.Deleted, KEEP_WAITING),
        ("Pending", Condition.Reconciled, Verdict(done=True)),
        ("Failed", Condition.Reconciled, Verdict(done=True)),  # acted on, whatever came of it
        (None, Condition.Reconciled, Verdict(done=True, ok=False)),
    ],
)
def test_what_one_observation_means(phase: str | None, wanted: Condition, verdict: Verdict) -> None:
    assert decide(phase, wanted) == verdict


@pytest.mark.parametrize("phase", ["Failed", "Ready", "Pending"])
def test_a_status_from_before_the_latest_change_says_nothing_yet(phase: str) -> None:
    # Right after a fix is applied, the last rebuild's Failed must not end the wait.
    assert decide(phase, Condition.Ready, current=False) == KEEP_WAITING
    assert decide(phase, Condition.Reconciled, current=False) == KEEP_WAITING
    assert decide(None, Condition.Deleted, current=False) == Verdict(done=True)


def test_wait_against_a_control_plane_without_regions(address: str, model: Path) -> None:
    docs = f"""\
kind: Region
metadata: {{name: eu}}
spec: {{country: DE}}
---
kind: Environment
metadata: {{name: production}}
---
kind: Model
metadata: {{name: waited}}
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
metadata: {{name: waited}}
spec: {{environment: production, model: waited, version: v1, replicas: 1}}
"""
    assert meshline(address, "apply", "-f", "-", stdin=docs).returncode == 0
    try:
        # No agent runs: the deployment stays Pending, so a short wait times out and says why.
        pending = meshline(address, "wait", "deployment", "waited", "--timeout", "1")
        assert pending.returncode == 1
        assert "timed out after 1 s waiting for deployment/waited (production) to be Ready" in (
            pending.stderr
        )
        assert "it is Pending" in pending.stderr
        missing = meshline(address, "wait", "deployment", "nope", "--for", "Deleted")
        assert missing.returncode == 0, missing.stderr
        assert "deployment/nope (production) deleted" in missing.stdout
    finally:
        assert meshline(address, "delete", "deployment", "waited").returncode == 0
        assert meshline(address, "delete", "model", "waited").returncode == 0
    gone = meshline(address, "wait", "deployment", "waited", "--timeout", "5")
    assert gone.returncode == 1 and "is not found" in gone.stderr
