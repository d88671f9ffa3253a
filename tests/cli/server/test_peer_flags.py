"""The control plane's peer-path flags: mTLS unless the benchmark-only switch is given, and a
certificate lifetime that is checked before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controlplane.main import ControlPlaneConfig
from controlplane.reconcile.identities import DEFAULT_LIFETIME
from tests.harness.processes import free_port


def _controlplane(*flags: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "controlplane", "--listen", f"127.0.0.1:{free_port()}",
         "--state-dir", str(state), *flags],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_default_peer_path_is_mtls() -> None:
    config = ControlPlaneConfig(listen="127.0.0.1:7070", state_dir=Path("/nonexistent"))
    assert config.peer_plaintext is False
    assert config.gateway_cert_ttl == DEFAULT_LIFETIME


def test_plain_text_is_labelled_benchmark_only() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "cli", "controlplane", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    ).stdout
    assert "--peer-plaintext" in shown and "BENCHMARK ONLY" in shown


@pytest.mark.parametrize(
    ("ttl", "problem"),
    [("1s", "at least 3s"), ("soon", "invalid duration"), ("0", "at least 3s")],
)
def test_a_bad_certificate_lifetime_is_refused_before_start(
    ttl: str, problem: str, tmp_path: Path
) -> None:
    result = _controlplane("--gateway-cert-ttl", ttl, state=tmp_path / "cp")
    assert result.returncode != 0
    assert "--gateway-cert-ttl" in result.stderr and problem in result.stderr
    assert not (tmp_path / "cp" / "meshline.db").exists()  # nothing started
