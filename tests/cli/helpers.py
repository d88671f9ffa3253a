"""Run the `meshline` command and a real control plane for the CLI tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.harness.credentials import register_control_plane, wait_serving
from tests.harness.processes import free_port, managed, wait_until


def meshline(
    address: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "--address", address, stdin=stdin)


def run_cli(
    *args: str,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`meshline ARGS` as a user runs it: `env` replaces the environment when given."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
        env=None if env is None else dict(env),
        cwd=cwd,
    )


@contextmanager
def control_plane(state_dir: Path, extra_args: Sequence[str] = ()) -> Iterator[str]:
    """A control plane process on a free port, stopped (and its log shown on failure) after;
    `extra_args` are more `meshline controlplane` flags."""
    addr = f"127.0.0.1:{free_port()}"
    args = [
        sys.executable,
        "-m",
        "cli",
        "controlplane",
        "--listen",
        addr,
        "--mesh-listen",
        f"127.0.0.1:{free_port()}",
        "--state-dir",
        str(state_dir),
        *extra_args,
    ]
    with managed("controlplane", args, state_dir):
        wait_serving(addr, state_dir)
        # `meshline ... --address addr` finds its token and CA
        register_control_plane(addr, state_dir)
        wait_until(
            lambda: meshline(addr, "get", "regions").returncode == 0, 60, "the control plane API"
        )
        yield addr
