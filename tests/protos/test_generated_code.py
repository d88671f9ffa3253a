"""The committed generated code must match what `make protos` produces now."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from tests.harness.processes import REPO_ROOT, VENV_BIN

GENERATOR = REPO_ROOT / "scripts" / "generate_protos.py"


def _load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("generate_protos", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    generator = _load_generator()
    generator.generate(tmp_path)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert fresh, "generation produced nothing"
    stale = [
        str(rel)
        for rel in fresh
        if not (REPO_ROOT / rel).exists()
        or (REPO_ROOT / rel).read_bytes() != (tmp_path / rel).read_bytes()
    ]
    assert not stale, f"generated code is stale, run `make protos`: {stale}"


def test_buf_lint_passes() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "buf"), "lint"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_generator_runs_as_a_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "meshline" / "v1" / "agent_pb2_grpc.py").exists()
