"""An identity provider's tokens on the management API: a real control plane started with
--oidc-* flags fetches the provider's JWKS from a real loopback URL; the CLI sends the JWT."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.client.contexts import Context, CredentialsFile, save
from tests.cli.client.test_login import user_env
from tests.cli.helpers import control_plane, run_cli
from tests.controlplane.translate.identity_provider import JwksServer, SigningKey, serving_jwks

ISSUER = "https://sso.example.test"
AUDIENCE = "meshline"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("sso-1")


@pytest.fixture(scope="module")
def provider(key: SigningKey) -> Iterator[JwksServer]:
    with serving_jwks([key]) as server:
        yield server


@pytest.fixture(scope="module")
def oidc_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cp-oidc")


@pytest.fixture(scope="module")
def oidc_address(oidc_state: Path, provider: JwksServer) -> Iterator[str]:
    flags = ["--oidc-issuer", ISSUER, "--oidc-audience", AUDIENCE, "--oidc-jwks-uri", provider.uri]
    with control_plane(oidc_state, flags) as address:
        yield address


def token(key: SigningKey, roles: list[str], **claims: object) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now,
        "exp": now + 600,
        "meshline_roles": roles,
    }
    body.update(claims)
    return key.sign(body)


def test_a_providers_token_is_its_principal_with_its_roles(
    oidc_address: str, oidc_state: Path, key: SigningKey, tmp_path: Path
) -> None:
    env = user_env(tmp_path / "config")
    jwt = token(key, ["deployer:staging", "viewer"])
    login = run_cli(
        *("login", "--address", oidc_address, "--token", jwt),
        *("--certificate-authority", str(oidc_state / "ca.crt")),
        env=env,
        cwd=tmp_path,
    )
    assert login.returncode == 0, login.stderr
    assert f"as jwt:{ISSUER}#alice (deployer in staging, viewer in all environments)" in (
        login.stdout
    )
    who = run_cli("whoami", env=env, cwd=tmp_path)
    assert "principal: jwt:https://sso.example.test#alice (jwt)" in who.stdout
    # a viewer everywhere reads; a deployer of staging may not change another environment
    assert run_cli("get", "regions", env=env, cwd=tmp_path).returncode == 0
    denied = run_cli("delete", "deployment", "fraud", env=env, cwd=tmp_path)
    assert denied.returncode == 1
    assert (
        f"'jwt:{ISSUER}#alice' (deployer in staging, viewer in all environments) may not "
        "delete Deployment 'fraud' in environment 'production'"
    ) in denied.stderr
    # the refusal is in the audit log under the provider's principal (a viewer of every
    # environment reads all of it)
    audit = run_cli("audit", "--principal", f"jwt:{ISSUER}#alice", "-o", "json", env=env)
    assert audit.returncode == 0, audit.stderr
    events = json.loads(audit.stdout)
    assert [(e["verb"], e["name"], e["outcome"]) for e in events] == [
        ("delete", "fraud", "refused")
    ]
    assert jwt not in audit.stdout


def test_tokens_the_provider_did_not_make_for_us_are_refused(
    oidc_address: str, oidc_state: Path, key: SigningKey, tmp_path: Path
) -> None:
    # A context that trusts the control plane's CA; the token comes from the environment.
    trusted = Context("sso", oidc_address, "", str(oidc_state / "ca.crt"))
    save(tmp_path / "config", CredentialsFile("", (trusted,)))

    def refused(jwt: str) -> str:
        env = user_env(tmp_path / "config", MESHLINE_TOKEN=jwt)
        result = run_cli("whoami", "--address", oidc_address, env=env)
        assert result.returncode == 1
        assert jwt not in result.stderr
        return result.stderr

    assert "not for audience 'meshline'" in refused(token(key, ["admin"], aud="another-app"))
    assert "expired" in refused(token(key, ["admin"], exp=int(time.time()) - 3600))
    assert "not trusted" in refused(token(key, ["admin"], iss="https://evil.example.test"))
    assert "bad signature" in refused(token(SigningKey.generate("sso-1"), ["admin"]))
    header = json.dumps({"alg": "none", "kid": "sso-1"}).encode()
    unsigned = base64.urlsafe_b64encode(header).rstrip(b"=").decode()
    body = token(key, ["admin"]).split(".")[1]
    assert "alg none" in refused(f"{unsigned}.{body}.")
