"""--xds-protocol (agent, up) is checked before anything starts (the commands as processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli.server.flags import xds_protocol_problem


def _meshline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("sotw", False),
        ("delta", False),
        ("DELTA_GRPC", True),
        ("incremental", True),
        ("", True),
    ],
)
def test_xds_protocol_values(value: str, problem: bool) -> None:
    found = xds_protocol_problem(value)
    assert (found is not None) is problem
    if found:
        assert f"--xds-protocol {value!r}" in found and "sotw" in found and "delta" in found


@pytest.mark.parametrize(
    "command",
    [
        ["agent", "--region", "eu"],
        ["up", "--regions", "eu"],
    ],
)
def test_an_unknown_xds_protocol_is_refused_before_anything_starts(
    command: list[str], tmp_path: Path
) -> None:
    result = _meshline(*command, "--state-dir", str(tmp_path), "--xds-protocol", "grpc")
    assert result.returncode == 1, result.stderr
    assert "--xds-protocol 'grpc': expected sotw" in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written
