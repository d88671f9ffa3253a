"""The agent's flags are checked before anything starts (the command as a process)."""

from __future__ import annotations

import subprocess
import sys


def test_agent_arguments_are_checked_before_anything_starts() -> None:
    bad_region = subprocess.run(
        [sys.executable, "-m", "cli", "agent", "--region", "EU_1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad_region.returncode == 1 and "EU_1" in bad_region.stderr
    bad_address = subprocess.run(
        [sys.executable, "-m", "cli", "agent", "--region", "eu", "--controlplane", "cp"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad_address.returncode == 1 and "host:port" in bad_address.stderr
    bad_facts = subprocess.run(
        [
            *(sys.executable, "-m", "cli", "agent", "--region", "eu"),
            *("--continent", "Europe", "--gpu-flavors", "a100,bad flavor", "--max-replicas", "-1"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad_facts.returncode == 1
    for flag in ("--continent", "--gpu-flavors", "--max-replicas"):
        assert flag in bad_facts.stderr, bad_facts.stderr
