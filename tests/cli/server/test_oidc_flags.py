"""`meshline controlplane --oidc-*`: every problem named by its flag before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.server.oidc_flags import oidc_settings
from tests.cli.helpers import run_cli
from tests.controlplane.translate.identity_provider import SigningKey


@pytest.fixture(scope="module")
def jwks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("idp") / "jwks.json"
    path.write_text(json.dumps({"keys": [SigningKey.generate("k1").jwk()]}))
    return path


def test_a_complete_provider(jwks: Path) -> None:
    settings, problems = oidc_settings("https://idp", "api", jwks, "", "roles")
    assert problems == []
    assert settings is not None
    assert (settings.issuer, settings.audience, settings.jwks_file, settings.roles_claim) == (
        "https://idp",
        "api",
        jwks,
        "roles",
    )
    assert oidc_settings("", "", None, "", "meshline_roles") == (None, [])


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("", "api", None, ""), "--oidc-audience without --oidc-issuer"),
        (("https://idp", "", None, "https://idp/jwks"), "--oidc-audience is required"),
        (("https://idp", "api", None, ""), "needs --oidc-jwks-file or --oidc-jwks-uri"),
        (("https://idp", "api", None, "ftp://idp/jwks"), "--oidc-jwks-uri 'ftp://idp/jwks' is not"),
        (
            ("https://idp", "api", None, "http://idp.example/jwks"),
            "--oidc-jwks-uri 'http://idp.example/jwks' is not https",
        ),
        (("https://idp", "api", Path("/nonexistent/jwks.json"), ""), "--oidc-jwks-file"),
    ],
)
def test_problems_name_the_flag(args: tuple[str, str, Path | None, str], problem: str) -> None:
    settings, problems = oidc_settings(*args, "meshline_roles")
    assert settings is None
    assert any(problem in p for p in problems), problems


def test_a_jwks_file_with_a_private_key_is_refused(tmp_path: Path) -> None:
    key = SigningKey.generate("k1")
    jwk = key.jwk() | {"d": key.private_markers()[0]}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    _, problems = oidc_settings("https://idp", "api", path, "", "meshline_roles")
    assert any("private members" in p for p in problems)


def test_the_command_refuses_before_starting(tmp_path: Path) -> None:
    result = run_cli("controlplane", "--state-dir", str(tmp_path), "--oidc-issuer", "https://idp")
    assert result.returncode == 1
    assert "--oidc-audience is required" in result.stderr
    assert not (tmp_path / "meshline.db").exists()


@pytest.mark.parametrize(
    "uri", ["https://idp.example/jwks", "http://127.0.0.1:8080/jwks", "http://localhost/jwks"]
)
def test_a_jwks_uri_is_https_or_on_loopback(uri: str) -> None:
    settings, problems = oidc_settings("https://idp", "api", None, uri, "meshline_roles")
    assert problems == [] and settings is not None and settings.jwks_uri == uri


def test_the_command_refuses_plain_http_keys_before_starting(tmp_path: Path) -> None:
    result = run_cli(
        *("controlplane", "--state-dir", str(tmp_path), "--oidc-issuer", "https://idp"),
        *("--oidc-audience", "api", "--oidc-jwks-uri", "http://idp.example/jwks"),
    )
    assert result.returncode == 1
    assert "--oidc-jwks-uri 'http://idp.example/jwks' is not https" in result.stderr
    assert not (tmp_path / "meshline.db").exists()
