"""Which API key `meshline infer` sends: --api-key, else $MESHLINE_API_KEY, else up's file."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.client.credentials import (
    API_KEY_ENV,
    API_KEY_FILE,
    ApiKey,
    KeySource,
    missing_key_hint,
    resolve_api_key,
)


@pytest.mark.parametrize(
    ("option", "env", "file", "want_secret", "want_source"),
    [
        ("opt", "env", "file", "opt", KeySource.OPTION),
        (None, "env", "file", "env", KeySource.ENVIRONMENT),
        (None, "", "file", "file", KeySource.FILE),
        (None, None, "file\n", "file", KeySource.FILE),  # as `up` writes it: one line
        ("", "  ", "file", "file", KeySource.FILE),  # empty option and variable: not set
        (None, None, None, "", KeySource.NONE),
        (None, None, "\n", "", KeySource.NONE),  # an empty file is no key
        ("opt", None, None, "opt", KeySource.OPTION),
    ],
)
def test_lookup_order(
    tmp_path: Path,
    option: str | None,
    env: str | None,
    file: str | None,
    want_secret: str,
    want_source: KeySource,
) -> None:
    if file is not None:
        (tmp_path / API_KEY_FILE).write_text(file)
    environ = {} if env is None else {API_KEY_ENV: env}
    key = resolve_api_key(option, tmp_path, environ)
    assert (key.secret, key.source) == (want_secret, want_source)
    if want_source is KeySource.FILE:
        assert key.path == tmp_path / API_KEY_FILE


def test_no_state_dir_is_no_key(tmp_path: Path) -> None:
    assert resolve_api_key(None, tmp_path / "missing", {}).source is KeySource.NONE


def test_headers_carry_a_bearer_token_or_nothing() -> None:
    assert ApiKey("s3", KeySource.OPTION).headers() == [("authorization", "Bearer s3")]
    assert ApiKey("", KeySource.NONE).headers() == []


def test_hints_name_where_the_key_came_from(tmp_path: Path) -> None:
    assert "no API key was sent" in missing_key_hint(ApiKey("", KeySource.NONE))
    assert "$MESHLINE_API_KEY was refused" in missing_key_hint(ApiKey("x", KeySource.ENVIRONMENT))
    from_file = ApiKey("x", KeySource.FILE, tmp_path / API_KEY_FILE)
    assert str(tmp_path / API_KEY_FILE) in missing_key_hint(from_file)
