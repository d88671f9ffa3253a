"""`meshline infer` through a real gateway that asks for an API key: where the CLI finds the key
(--api-key, $MESHLINE_API_KEY, `.meshline/api-key`) and what a refused call prints.

A real control plane, one region (its agent, Envoy and a Torch worker); the production
environment has no access policy, so any key in scope is needed (the default).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.client.credentials import API_KEY_ENV, API_KEY_FILE
from tests.harness.mesh import Mesh, running_mesh
from tests.harness.processes import VENV_BIN, wait_until

DEPLOYMENT = "guarded"
REFUSED = f"deployment '{DEPLOYMENT}' in environment 'production' needs a valid credential"


def _documents(model: Path) -> str:
    return f"""\
kind: Environment
metadata: {{name: production}}
---
kind: Model
metadata: {{name: {DEPLOYMENT}}}
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
metadata: {{name: {DEPLOYMENT}}}
spec: {{environment: production, model: {DEPLOYMENT}, version: v1, replicas: 1}}
"""


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, model: Path) -> Iterator[Mesh]:
    with running_mesh(tmp_path_factory.mktemp("mesh"), regions=("eu",)) as mesh:
        mesh.apply(_documents(model))
        mesh.wait_ready(DEPLOYMENT)
        yield mesh


@pytest.fixture(scope="module")
def secret(mesh: Mesh) -> str:
    """A key for production, once the gateway enforces it."""
    value = mesh.create_key("cli-test", environment="production")

    def enforced() -> bool:
        status = mesh.key("cli-test").status
        return not status.pending_in and "eu" in status.enforced_in

    wait_until(enforced, 30, "the eu gateway to enforce key cli-test")
    return value


def infer(
    mesh: Mesh, cwd: Path, *args: str, env_key: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`meshline infer` as a user runs it from `cwd`, with only `env_key` in the environment."""
    env = {k: v for k, v in os.environ.items() if k != API_KEY_ENV}
    if env_key is not None:
        env[API_KEY_ENV] = env_key
    command = [str(VENV_BIN / "meshline"), "infer", DEPLOYMENT, "--input", "input=0.5"]
    command += ["--region", "eu", "--address", mesh.address, *args]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


PROTOCOLS = [pytest.param((), id="grpc"), pytest.param(("--http",), id="http")]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_without_a_key_the_gateway_refuses_and_the_cli_says_why(
    mesh: Mesh, tmp_path: Path, protocol: tuple[str, ...]
) -> None:
    result = infer(mesh, tmp_path, *protocol)
    assert result.returncode != 0
    assert REFUSED in result.stderr
    assert "no API key was sent" in result.stderr


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_key_from_the_option(
    mesh: Mesh, secret: str, tmp_path: Path, protocol: tuple[str, ...]
) -> None:
    result = infer(mesh, tmp_path, "--api-key", secret, *protocol)
    assert result.returncode == 0, result.stderr
    assert "served by worker" in result.stdout


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_key_from_the_environment(
    mesh: Mesh, secret: str, tmp_path: Path, protocol: tuple[str, ...]
) -> None:
    result = infer(mesh, tmp_path, *protocol, env_key=secret)
    assert result.returncode == 0, result.stderr
    assert "served by worker" in result.stdout


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_key_from_the_file_up_writes(
    mesh: Mesh, secret: str, tmp_path: Path, protocol: tuple[str, ...]
) -> None:
    (tmp_path / ".meshline").mkdir()
    (tmp_path / ".meshline" / API_KEY_FILE).write_text(secret + "\n")
    result = infer(mesh, tmp_path, *protocol)
    assert result.returncode == 0, result.stderr
    assert "served by worker" in result.stdout


def test_the_option_wins_over_the_environment(mesh: Mesh, secret: str, tmp_path: Path) -> None:
    result = infer(mesh, tmp_path, "--api-key", "not-a-key", env_key=secret)
    assert result.returncode != 0
    assert REFUSED in result.stderr
    assert "the API key from --api-key was refused" in result.stderr
