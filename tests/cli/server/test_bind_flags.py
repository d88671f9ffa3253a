"""Bind-address flags are checked before anything starts (the commands as processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.processes import free_port


def _meshline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--admin-host", "localhost", "expected an IP address"),
        ("--worker-host", "10.0.0.1:80", "expected an IP address"),
    ],
)
def test_agent_bind_flags_take_ip_addresses(
    flag: str, value: str, says: str, tmp_path: Path
) -> None:
    result = _meshline("agent", "--region", "eu", "--state-dir", str(tmp_path), flag, value)
    assert result.returncode == 1, result.stderr
    assert flag in result.stderr and says in result.stderr


@pytest.mark.parametrize(
    ("value", "says"),
    [("0.0.0.0", "not a wildcard"), ("cp.example", "expected an IP address")],
)
def test_the_activator_host_must_be_an_address_gateways_reach(
    value: str, says: str, tmp_path: Path
) -> None:
    # Its own port and state: were the check missing, nothing else's would be touched.
    result = _meshline(
        "controlplane",
        *("--listen", f"127.0.0.1:{free_port()}", "--state-dir", str(tmp_path)),
        *("--activator-host", value),
    )
    assert result.returncode == 1, result.stderr
    assert "--activator-host" in result.stderr and says in result.stderr
