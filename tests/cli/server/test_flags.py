"""The server commands' flags are checked before anything starts (the commands as processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.server.commands import join_token_from
from meshline.join_token import JOIN_TOKEN_ENV
from tests.harness.processes import free_port


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


def _agent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "agent", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k != JOIN_TOKEN_ENV} | (env or {}),
    )


def test_an_agent_no_longer_says_where_its_region_is(tmp_path: Path) -> None:
    """Facts that decide placement come from the join token or an applied Region."""
    result = _agent(
        *("--region", "eu", "--state-dir", str(tmp_path)),
        *("--country", "DE", "--gpu-flavors", "a100", "--max-replicas", "3"),
    )
    assert result.returncode == 1
    for flag in ("--country", "--gpu-flavors", "--max-replicas"):
        assert flag in result.stderr, result.stderr
    assert "meshline regions token create eu --country" in result.stderr
    assert not (tmp_path / "identity").exists()


def test_an_agent_without_a_join_token_says_where_to_get_one(tmp_path: Path) -> None:
    """Nothing stored, no token: it ends at once (no control plane is even asked)."""
    result = _agent(
        *("--region", "eu", "--state-dir", str(tmp_path)),
        *("--controlplane", f"127.0.0.1:{free_port()}"),
    )
    assert result.returncode == 1
    assert "no join token" in result.stderr and "meshline regions token create eu" in result.stderr
    assert JOIN_TOKEN_ENV in result.stderr and "--join-token-file" in result.stderr
    assert not (tmp_path / "envoy").exists()  # no Envoy was started


def test_a_join_token_file_must_be_readable_and_not_empty(tmp_path: Path) -> None:
    empty = tmp_path / "token"
    empty.write_text("\n")
    result = _agent("--region", "eu", "--join-token-file", str(empty))
    assert result.returncode == 1 and f"--join-token-file {empty} is empty" in result.stderr
    missing = _agent("--region", "eu", "--join-token-file", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "No such file" in missing.stderr


def test_join_token_from_prefers_the_file_and_never_needs_one(tmp_path: Path) -> None:
    file = tmp_path / "token"
    file.write_text("mlj_from-file\n")
    assert join_token_from(file, {JOIN_TOKEN_ENV: "mlj_env"}) == ("mlj_from-file", None)
    assert join_token_from(None, {JOIN_TOKEN_ENV: " mlj_env "}) == ("mlj_env", None)
    assert join_token_from(None, {}) == ("", None)


@pytest.mark.parametrize("from_file", [False, True])
def test_the_join_token_leaves_the_environment_once_read(tmp_path: Path, from_file: bool) -> None:
    """Read once, it is gone from the agent's environment: nothing it starts inherits it."""
    file = tmp_path / "token"
    file.write_text("mlj_from-file\n")
    environ = {JOIN_TOKEN_ENV: "mlj_env", "PATH": "/bin"}
    token, problem = join_token_from(file if from_file else None, environ)
    assert problem is None and token == ("mlj_from-file" if from_file else "mlj_env")
    assert environ == {"PATH": "/bin"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--ca-cert", "/x/ca.crt"), "--ca-cert and --ca-key go together"),
        (("--edge-ca-key", "/x/e.key"), "--edge-ca-cert and --edge-ca-key go together"),
        (("--agent-cert-ttl", "soon"), "--agent-cert-ttl: invalid duration"),
        (("--agent-cert-ttl", "0"), "--agent-cert-ttl: must be more than 0"),
        (("--mesh-listen", "7071"), "--mesh-listen '7071': expected host:port"),
    ],
)
def test_controlplane_mesh_flags_are_checked_before_anything_starts(
    args: tuple[str, ...], says: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "controlplane", "--state-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1 and says in result.stderr, result.stderr
    assert not (tmp_path / "ca.key").exists()


def test_the_control_plane_does_not_start_with_the_mesh_ca_as_its_edge_ca(tmp_path: Path) -> None:
    """Edge certificates name what a region asks for: signed by a CA the mesh trusts, they would
    pass for the control plane. The same CA for both is refused before any port listens."""
    from tests.controlplane.pki.builders import ca_certificate, ec_key, write_pem

    key, now = ec_key(), datetime.now(UTC)
    one_ca = ca_certificate(
        key,
        name="one CA for all",
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
    )
    cert, key_file = write_pem(tmp_path, [one_ca], key)
    state = tmp_path / "state"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "cli", "controlplane", "--state-dir", str(state)),
            *("--listen", f"127.0.0.1:{free_port()}"),
            *("--ca-cert", str(cert), "--ca-key", str(key_file)),
            *("--edge-ca-cert", str(cert), "--edge-ca-key", str(key_file)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "cannot start the control plane" in result.stderr
    assert "has the key of a CA the mesh trusts" in result.stderr
    assert not (state / "edge-ca.crt").exists()
