"""The first admin credential: made once per store, written 0600, kept across starts, never
made again by itself (a revoked admin stays revoked), replaced on request (--reset-admin-token)."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from controlplane.api.authn import AuthenticationError, Authenticator
from controlplane.api.bootstrap import AdminTokenAction, ensure_admin_token, working_admins
from controlplane.store import Store
from controlplane.store.audit import AuditQuery, list_events
from controlplane.store.keys import get_key, list_keys, revoke_key
from controlplane.store.markers import ADMIN_BOOTSTRAPPED, marked_at

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


async def test_a_revoked_admin_stays_revoked_across_restarts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Revoking `admin` (after a leak, or to run with an identity provider's admins only) is
    not undone by the next start: no new key, the token file left as it is; only
    --reset-admin-token makes an admin key again."""
    with Store.open(tmp_path / "meshline.db") as store:
        ensure_admin_token(store, tmp_path, T0)
        revoke_key(store, "admin", T0 + 1)
    token_file = tmp_path / "admin-token"
    written = (token_file.read_text(), token_file.stat().st_mtime_ns)
    for restart in range(2):
        with Store.open(tmp_path / "meshline.db") as store, caplog.at_level(logging.WARNING):
            kept = ensure_admin_token(store, tmp_path, T0 + 10 + restart)
            assert kept.action is AdminTokenAction.KEPT
            assert [k.name for k in list_keys(store)] == ["admin"]
            assert working_admins(store, T0 + 10) == []
        assert (token_file.read_text(), token_file.stat().st_mtime_ns) == written
        assert "--reset-admin-token" in caplog.text
    token_file.unlink()  # even with no file at all: nothing is made, nothing written
    with Store.open(tmp_path / "meshline.db") as store:
        assert ensure_admin_token(store, tmp_path, T0 + 20).action is AdminTokenAction.KEPT
        assert not token_file.exists()
        made = ensure_admin_token(store, tmp_path, T0 + 30, reset=True)
        assert (made.action, made.key) == (AdminTokenAction.CREATED, "admin-2")
        assert await works(store, made.path, T0 + 30) == "admin-2"


async def test_a_store_made_before_the_marker_is_not_bootstrapped_again(tmp_path: Path) -> None:
    """A store whose admin key was made before the store kept a marker of it: its keys say
    the bootstrap happened."""
    with Store.open(tmp_path / "meshline.db") as store:
        ensure_admin_token(store, tmp_path, T0)
        revoke_key(store, "admin", T0 + 1)
        with store.companion() as conn:  # as an older meshline left it
            conn.execute("DELETE FROM meta WHERE key = ?", (ADMIN_BOOTSTRAPPED,))
        assert marked_at(store, ADMIN_BOOTSTRAPPED) is None
        assert ensure_admin_token(store, tmp_path, T0 + 2).action is AdminTokenAction.KEPT
        assert [k.name for k in list_keys(store)] == ["admin"]
        assert marked_at(store, ADMIN_BOOTSTRAPPED) == int(T0 + 2)
