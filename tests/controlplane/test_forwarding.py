"""The forwarding secret and the tokens derived from it."""

from __future__ import annotations

import stat
from pathlib import Path

from controlplane.forwarding import forward_tokens, load_or_create_secret


def test_secret_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "forwarding.key"
    first = load_or_create_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first  # a restart keeps every gateway's token


def test_tokens_differ_by_region_and_by_secret() -> None:
    a = forward_tokens(b"a" * 32, ["eu", "us", "eu"])
    assert sorted(a) == ["eu", "us"] and a["eu"] != a["us"]
    assert forward_tokens(b"a" * 32, ["eu"])["eu"] == a["eu"]
    assert forward_tokens(b"b" * 32, ["eu"])["eu"] != a["eu"]
