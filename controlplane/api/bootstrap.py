"""The first admin credential: made by the control plane itself, for whoever owns its state dir.

At the first start of a new store, the control plane creates key `admin` and writes its secret
to `<state_dir>/admin-token` (0600 from the first byte): `meshline up` and the local user read
it there. It does so once: the store remembers it (marker ADMIN_BOOTSTRAPPED), so revoking
`admin` after a leak, or to run with an identity provider's admins only, stays revoked across
restarts. Only `meshline controlplane --reset-admin-token` makes an admin credential again: it
rotates key `admin` (or makes a new admin key when it was revoked) and writes the file again,
also when the file was lost. Local access to the state dir is the root of trust, as the store
and the CA key beside it already are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from controlplane.api.authz import ALL_ENVIRONMENTS, Role
from controlplane.api.key_tokens import KeyClaims, mint_key
from controlplane.store import Store
from controlplane.store.audit import ALLOWED, AuditRecord, append_events
from controlplane.store.keys import KeyScope, StoredKey, create_key, list_keys, rotate_key
from controlplane.store.markers import ADMIN_BOOTSTRAPPED, mark, marked_at
from meshline.phases import ApiKeyPhase
from meshline.secret_file import write_secret_file
from meshline.wire import ADMIN_TOKEN_FILE

log = logging.getLogger(__name__)

ADMIN_KEY = "admin"
BOOTSTRAP_PRINCIPAL = "controlplane"
ADMIN_SCOPE = KeyScope(environment=ALL_ENVIRONMENTS, roles=(Role.ADMIN.value,))


class AdminTokenAction(StrEnum):
    CREATED = "created"
    ROTATED = "rotated"
    KEPT = "kept"  # made at an earlier start (working or not now); nothing written


@dataclass(frozen=True)
class AdminToken:
    """What the start did about the admin credential."""

    action: AdminTokenAction
    key: str  # the admin key's name ("" when kept: there may be several)
    path: Path


def working_admins(store: Store, now: float) -> list[StoredKey]:
    """Keys that work now and hold `admin` in every environment."""
    return [
        k
        for k in list_keys(store)
        if k.phase(now) is ApiKeyPhase.ACTIVE
        and Role.ADMIN.value in k.scope.roles
        and k.scope.environment == ALL_ENVIRONMENTS
    ]


def _free_name(store: Store) -> str:
    taken = {k.name for k in list_keys(store)}
    if ADMIN_KEY not in taken:
        return ADMIN_KEY
    n = 2
    while f"{ADMIN_KEY}-{n}" in taken:
        n += 1
    return f"{ADMIN_KEY}-{n}"


def _claims(name: str, now: float) -> KeyClaims:
    return KeyClaims(name, int(now), None, ADMIN_SCOPE.environment, (), ADMIN_SCOPE.roles)


def bootstrapped(store: Store) -> bool:
    """Whether this store's first admin key was made already. A store from before the marker
    holds that key (keys are revoked, never deleted) when it was."""
    return marked_at(store, ADMIN_BOOTSTRAPPED) is not None or bool(list_keys(store))


def ensure_admin_token(
    store: Store, state_dir: Path, now: float, reset: bool = False
) -> AdminToken:
    """On a new store (or with `reset`), create or replace the admin credential and write its
    secret to `<state_dir>/admin-token`; else nothing, whether an admin key works or not."""
    path = state_dir / ADMIN_TOKEN_FILE
    if not reset and bootstrapped(store):
        mark(store, ADMIN_BOOTSTRAPPED, now)  # a store from before the marker
        _say_what_is_missing(store, state_dir, now)
        return AdminToken(AdminTokenAction.KEPT, "", path)
    admins = working_admins(store, now)
    existing = next((k for k in admins if k.name == ADMIN_KEY), None)
    if existing is not None:
        minted = mint_key(_claims(existing.name, now))
        rotate_key(store, existing.name, minted.key_id, minted.public_key, 0.0, now)
        name, action = existing.name, AdminTokenAction.ROTATED
    else:
        name = _free_name(store)
        minted = mint_key(_claims(name, now))
        create_key(store, name, ADMIN_SCOPE, None, minted.key_id, minted.public_key, now)
        action = AdminTokenAction.CREATED
    write_secret_file(path, minted.secret + "\n")
    mark(store, ADMIN_BOOTSTRAPPED, now)
    append_events(
        store,
        [
            AuditRecord(
                now,
                BOOTSTRAP_PRINCIPAL,
                f"key-{'create' if action is AdminTokenAction.CREATED else 'rotate'}",
                "ApiKey",
                name,
                ALL_ENVIRONMENTS,
                ALLOWED,
                "",
                f"{action}: the admin credential, written to {path}",
                "bootstrap",
            )
        ],
    )
    log.info(
        "API key %s (role admin, every environment) %s; its secret is in %s", name, action, path
    )
    return AdminToken(action, name, path)


def _say_what_is_missing(store: Store, state_dir: Path, now: float) -> None:
    """A warning when no admin key works, or when the admin key's secret is not on disk."""
    if not working_admins(store, now):
        log.warning(
            "no working API key with role admin in every environment (revoked or expired): the "
            "control plane does not make one by itself after its first start. Admins of an "
            "identity provider still work; to make a new admin key, stop the control plane and "
            "start it once with --reset-admin-token"
        )
    elif not (state_dir / ADMIN_TOKEN_FILE).exists():
        log.warning(
            "no %s in %s: the admin key's secret is not on disk. To get a new one, stop the "
            "control plane and start it once with --reset-admin-token",
            ADMIN_TOKEN_FILE,
            state_dir,
        )
