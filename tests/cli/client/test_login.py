"""`meshline login`, `whoami`, `config ...`, `audit` and the token lookup end to end, against a
real control plane (tests/cli/conftest.py) with a credentials file of each test's own."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from cli.client.contexts import Context, CredentialsFile, load, save
from tests.cli.helpers import control_plane, meshline, run_cli
from tests.harness.credentials import admin_token


def user_env(config: Path, **extra: str) -> dict[str, str]:
    """A user's shell: its own credentials file, no token or address in the environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MESHLINE_TOKEN", "MESHLINE_ADDRESS", "MESHLINE_CONFIG")
    }
    env["MESHLINE_CONFIG"] = str(config)
    env.update(extra)
    return env


def make_key(address: str, name: str, *options: str) -> str:
    created = meshline(address, "keys", "create", name, *options)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


@pytest.fixture(scope="module")
def admin(cp_state: Path, address: str) -> str:
    return admin_token(cp_state)


@pytest.fixture(scope="module")
def ca(cp_state: Path, address: str) -> str:
    """The control plane's CA, as a user copies it from its host (the API port speaks TLS)."""
    return str(cp_state / "ca.crt")


def test_login_checks_the_token_then_saves_it_as_the_current_context(
    address: str, admin: str, ca: str, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    env = user_env(config)
    untrusted = run_cli("login", "--address", address, "--token", admin, env=env, cwd=tmp_path)
    assert untrusted.returncode == 1 and not config.exists()
    assert "its certificate is not signed by a CA this CLI trusts" in untrusted.stderr
    assert f"meshline login --address {address} --certificate-authority PATH" in untrusted.stderr
    login = run_cli(
        *("login", "--address", address, "--context", "lab", "--certificate-authority", ca),
        stdin=admin + "\n",
        env=env,
        cwd=tmp_path,
    )
    assert login.returncode == 0, login.stderr
    assert f"logged in to {address} as admin (admin in all environments)" in login.stdout
    assert f"context 'lab' saved in {config} and made current" in login.stdout
    assert admin not in login.stdout + login.stderr
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    saved = load(config)
    assert saved.current_context == "lab"
    assert saved.get("lab") is not None and saved.get("lab").server == address  # type: ignore[union-attr]
    assert saved.get("lab").certificate_authority == ca  # type: ignore[union-attr]
    # no --address, no token anywhere else: the context gives both
    regions = run_cli("get", "regions", env=env, cwd=tmp_path)
    assert regions.returncode == 0, regions.stderr
    who = run_cli("whoami", env=env, cwd=tmp_path)
    assert who.returncode == 0, who.stderr
    assert "principal: admin (key)" in who.stdout
    assert f"token:     from context 'lab' of {config}" in who.stdout


def test_login_refuses_to_save_a_token_the_server_refuses(
    address: str, ca: str, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    env = user_env(config)
    bad = run_cli(
        *("login", "--address", address, "--token", "a.b.c", "--certificate-authority", ca),
        env=env,
        cwd=tmp_path,
    )
    assert bad.returncode == 1
    assert f"{address} refused the token, nothing saved" in bad.stderr
    assert not config.exists()
    empty = run_cli("login", "--address", address, stdin="", env=env, cwd=tmp_path)
    assert empty.returncode == 1 and "no token given" in empty.stderr


def test_contexts_switch_list_and_delete(address: str, admin: str, ca: str, tmp_path: Path) -> None:
    config = tmp_path / "config"
    env = user_env(config)
    viewer = make_key(address, "login-viewer", "--roles", "viewer")
    for name, token in (("as-admin", admin), ("as-viewer", viewer)):
        done = run_cli(
            *("login", "--address", address, "--context", name, "--token", token),
            *("--certificate-authority", ca),
            env=env,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
    listed = run_cli("config", "get-contexts", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert rows == [["as-admin", address, ca], ["*", "as-viewer", address, ca]]
    assert admin not in listed.stdout and viewer not in listed.stdout
    current = run_cli("config", "current-context", env=env, cwd=tmp_path)
    assert current.stdout.strip() == "as-viewer"
    # the viewer may read, not change
    denied = run_cli("delete", "region", "nowhere", env=env, cwd=tmp_path)
    assert denied.returncode == 1
    assert "key 'login-viewer' (viewer in all environments) may not delete Region" in denied.stderr
    assert "[PERMISSION_DENIED]" in denied.stderr
    switched = run_cli("config", "use-context", "as-admin", env=env, cwd=tmp_path)
    assert switched.returncode == 0 and "switched to context 'as-admin'" in switched.stdout
    assert "principal: admin" in run_cli("whoami", env=env, cwd=tmp_path).stdout
    # --context for one command, without switching
    once = run_cli("--context", "as-viewer", "whoami", env=env, cwd=tmp_path)
    assert "principal: login-viewer" in once.stdout
    unknown = run_cli("config", "use-context", "nope", env=env, cwd=tmp_path)
    assert unknown.returncode == 1
    assert "no context 'nope'" in unknown.stderr and "as-admin, as-viewer" in unknown.stderr
    deleted = run_cli("config", "delete-context", "as-admin", env=env, cwd=tmp_path)
    assert deleted.returncode == 0
    assert load(config).get("as-admin") is None and load(config).current_context == ""
    none = run_cli("config", "current-context", env=env, cwd=tmp_path)
    assert none.returncode == 1 and "no current context" in none.stderr


def test_token_precedence_flag_then_environment_then_context(
    address: str, admin: str, ca: str, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    first = make_key(address, "precedence-a", "--roles", "viewer")
    second = make_key(address, "precedence-b", "--roles", "viewer")
    env = user_env(config)
    login = ("login", "--address", address, "--token", admin, "--certificate-authority", ca)
    assert run_cli(*login, env=env, cwd=tmp_path).returncode == 0
    with_env = user_env(config, MESHLINE_TOKEN=first)

    def principal(*args: str, environ: dict[str, str]) -> str:
        who = run_cli(*args, "whoami", env=environ, cwd=tmp_path)
        assert who.returncode == 0, who.stderr
        return who.stdout.splitlines()[0]

    assert principal(environ=env) == "principal: admin (key)"
    assert principal(environ=with_env) == "principal: precedence-a (key)"
    assert principal("--token", second, environ=with_env) == "principal: precedence-b (key)"


def test_an_unauthenticated_answer_says_where_the_token_came_from(
    address: str, ca: str, tmp_path: Path
) -> None:
    # A context that trusts the control plane's CA and holds no token.
    save(tmp_path / "config", CredentialsFile("", (Context("lab", address, "", ca),)))
    env = user_env(tmp_path / "config")
    nothing = run_cli("get", "deployments", "--address", address, env=env, cwd=tmp_path)
    assert nothing.returncode == 1
    assert "no credential" in nothing.stderr and "[UNAUTHENTICATED]" in nothing.stderr
    assert f"no token for {address}" in nothing.stderr
    assert f"meshline login --address {address}" in nothing.stderr
    revoked = make_key(address, "soon-revoked", "--roles", "viewer")
    assert meshline(address, "keys", "revoke", "soon-revoked").returncode == 0
    refused = run_cli(
        "get",
        "deployments",
        "--address",
        address,
        env=user_env(tmp_path / "config", MESHLINE_TOKEN=revoked),
        cwd=tmp_path,
    )
    assert refused.returncode == 1
    assert "API key 'soon-revoked' was revoked" in refused.stderr
    assert "the token from $MESHLINE_TOKEN was refused" in refused.stderr
    assert revoked not in refused.stderr


def test_management_roles_go_through_keys_create_and_show_in_keys_list(address: str) -> None:
    make_key(address, "ci-deployer", "--environment", "staging", "--roles", "deployer,ci")
    listed = meshline(address, "keys", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    keys = {k["metadata"]["name"]: k for k in json.loads(listed.stdout)}
    assert keys["ci-deployer"]["spec"]["roles"] == ["ci", "deployer"]
    table = meshline(address, "keys", "list")
    row = next(r for r in table.stdout.splitlines() if r.strip().startswith("ci-deployer"))
    assert "ci,deployer" in row


def test_audit_shows_changes_and_refusals(address: str, ca: str, tmp_path: Path) -> None:
    made = make_key(address, "audit-viewer", "--roles", "viewer")
    save(tmp_path / "config", CredentialsFile("", (Context("lab", address, "", ca),)))
    refused = run_cli(
        "keys",
        "revoke",
        "audit-viewer",
        "--address",
        address,
        env=user_env(tmp_path / "config", MESHLINE_TOKEN=made),
    )
    assert refused.returncode == 1
    out = meshline(address, "audit", "--kind", "ApiKey", "--since", "1h", "-o", "json")
    assert out.returncode == 0, out.stderr
    events = [e for e in json.loads(out.stdout) if e["name"] == "audit-viewer"]
    assert [(e["principal"], e["verb"], e["outcome"]) for e in events] == [
        ("admin", "key-create", "allowed"),
        ("audit-viewer", "key-revoke", "refused"),
    ]
    assert events[1]["code"] == "PERMISSION_DENIED"
    assert isinstance(events[0]["sequence"], int) and events[0]["sequence"] < events[1]["sequence"]
    assert made not in out.stdout
    table = meshline(address, "audit", "--principal", "audit-viewer")
    assert table.returncode == 0, table.stderr
    assert "PRINCIPAL" in table.stdout and "refused (PERMISSION_DENIED)" in table.stdout
    bad = meshline(address, "audit", "--since", "yesterday")
    assert bad.returncode == 1 and "--since 'yesterday'" in bad.stderr


def test_the_audit_log_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "cp"
    with control_plane(state) as address:
        created = meshline(address, "keys", "create", "before-restart")
        assert created.returncode == 0, created.stderr
    with control_plane(state) as address:
        out = meshline(address, "audit", "-o", "json")
        assert out.returncode == 0, out.stderr
        events = json.loads(out.stdout)
    assert ("controlplane", "key-create", "admin") in {
        (e["principal"], e["verb"], e["name"]) for e in events
    }  # the first start made the admin key once; the second kept it
    assert [e["name"] for e in events].count("admin") == 1
    assert ("admin", "key-create", "before-restart", "allowed") in {
        (e["principal"], e["verb"], e["name"], e["outcome"]) for e in events
    }
