"""The first admin credential: made once, written 0600, kept across starts, replaced on
request (the file was lost) or when no admin key works any more."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from controlplane.api.authn import AuthenticationError, Authenticator
from controlplane.api.bootstrap import AdminTokenAction, ensure_admin_token, working_admins
from controlplane.store import Store
from controlplane.store.audit import AuditQuery, list_events
from controlplane.store.keys import get_key, revoke_key

T0 = 1_800_000_000.0


async def works(store: Store, path: Path, now: float = T0) -> str:
    principal = await Authenticator(store, clock=lambda: now).authenticate(
        f"Bearer {path.read_text().strip()}"
    )
    return principal.name


async def test_the_first_start_makes_the_admin_key_and_writes_its_secret_0600(
    tmp_path: Path,
) -> None:
    with Store.open(tmp_path / "meshline.db") as store:
        made = ensure_admin_token(store, tmp_path, T0)
        assert (made.action, made.key) == (AdminTokenAction.CREATED, "admin")
        assert made.path == tmp_path / "admin-token"
        assert stat.S_IMODE(made.path.stat().st_mode) == 0o600
        key = get_key(store, "admin")
        assert (key.scope.environment, key.scope.roles) == ("", ("admin",))
        assert await works(store, made.path) == "admin"
        (event,) = list_events(store, AuditQuery())
        assert (event.record.principal, event.record.verb, event.record.name) == (
            "controlplane",
            "key-create",
            "admin",
        )
        assert made.path.read_text().strip() not in event.record.detail


async def test_later_starts_keep_it(tmp_path: Path) -> None:
    with Store.open(tmp_path / "meshline.db") as store:
        ensure_admin_token(store, tmp_path, T0)
        secret = (tmp_path / "admin-token").read_text()
        kept = ensure_admin_token(store, tmp_path, T0 + 10)
        assert kept.action is AdminTokenAction.KEPT
        assert (tmp_path / "admin-token").read_text() == secret
        assert len(working_admins(store, T0 + 10)) == 1


async def test_a_lost_file_is_said_at_start_and_reset_replaces_the_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Store.open(tmp_path / "meshline.db") as store:
        ensure_admin_token(store, tmp_path, T0)
        old = (tmp_path / "admin-token").read_text().strip()
        (tmp_path / "admin-token").unlink()
        with caplog.at_level(logging.WARNING):
            assert ensure_admin_token(store, tmp_path, T0).action is AdminTokenAction.KEPT
        assert "--reset-admin-token" in caplog.text
        reset = ensure_admin_token(store, tmp_path, T0 + 1, reset=True)
        assert (reset.action, reset.key) == (AdminTokenAction.ROTATED, "admin")
        assert await works(store, reset.path, T0 + 1) == "admin"
        with pytest.raises(AuthenticationError, match="rotated"):
            await Authenticator(store, clock=lambda: T0 + 1).authenticate(f"Bearer {old}")


async def test_with_no_working_admin_key_a_new_one_is_made(tmp_path: Path) -> None:
    with Store.open(tmp_path / "meshline.db") as store:
        ensure_admin_token(store, tmp_path, T0)
        revoke_key(store, "admin", T0 + 1)
        made = ensure_admin_token(store, tmp_path, T0 + 2)
        assert (made.action, made.key) == (AdminTokenAction.CREATED, "admin-2")
        assert await works(store, made.path, T0 + 2) == "admin-2"
