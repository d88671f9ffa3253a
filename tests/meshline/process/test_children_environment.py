"""What a child of the agent (Envoy, a worker running user model code) finds in its environment:
the agent's, without the join token, read from the real process's /proc/<pid>/environ."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshline.join_token import JOIN_TOKEN_ENV
from meshline.process.children import child_environment, spawn, stop


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (entry.decode().partition("=") for entry in raw.split(b"\0") if entry)
    return {name: value for name, _, value in pairs}


async def test_a_child_never_inherits_the_join_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(JOIN_TOKEN_ENV, "mlj_0000.secret-that-model-code-must-not-read")
    monkeypatch.setenv("MESHLINE_TEST_INHERITED", "yes")
    process = await spawn(
        ["sleep", "60"],
        tmp_path / "child.log",
        env={"MESHLINE_TEST_GIVEN": "1", JOIN_TOKEN_ENV: "mlj_0000.given-too"},
    )
    try:
        seen = _environ(process.pid)
    finally:
        await stop(process, 5)
    assert JOIN_TOKEN_ENV not in seen
    assert seen["MESHLINE_TEST_INHERITED"] == "yes" and seen["MESHLINE_TEST_GIVEN"] == "1"


def test_the_childs_environment_is_the_agents_without_its_secrets() -> None:
    parent = {"PATH": "/bin", JOIN_TOKEN_ENV: "mlj_x.y", "A": "1"}
    assert child_environment(parent, {"A": "2", "B": "3"}) == {"PATH": "/bin", "A": "2", "B": "3"}
    assert parent[JOIN_TOKEN_ENV] == "mlj_x.y"  # the agent's own mapping is left as it was
