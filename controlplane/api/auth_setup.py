"""Putting management authentication together at start: the admin credential, the identity
provider (when flags name one) and the guard that the gRPC server runs every call through."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from controlplane.api.authn import Authenticator
from controlplane.api.bootstrap import AdminToken, ensure_admin_token
from controlplane.api.guard import AuditLog, ManagementGuard
from controlplane.api.oidc import OidcProvider, OidcSettings
from controlplane.store import Store


@dataclass(frozen=True)
class AuthConfig:
    """`meshline controlplane` flags about management credentials."""

    oidc: OidcSettings | None = None
    # Replace the admin credential (rotate key `admin`) and write admin-token again.
    reset_admin_token: bool = False


@dataclass(frozen=True)
class ManagementAuth:
    guard: ManagementGuard
    admin_token: AdminToken
    oidc: OidcProvider | None

    async def run(self) -> None:
        """Until cancelled: keep the identity provider's keys fresh (when there is one), and
        write the audit log's summaries of unauthenticated refusals (the last ones at the end)."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.guard.run(), name="refusal-summaries")
            if self.oidc is not None:
                tasks.create_task(self.oidc.run(), name="oidc-keys")


def management_auth(store: Store, state_dir: Path, config: AuthConfig) -> ManagementAuth:
    """The guard for `grpc.aio.server(interceptors=[...])`, after making sure an admin
    credential exists (see bootstrap.py)."""
    admin = ensure_admin_token(store, state_dir, time.time(), config.reset_admin_token)
    oidc = OidcProvider(config.oidc) if config.oidc is not None else None
    guard = ManagementGuard(store, Authenticator(store, oidc), AuditLog(store))
    return ManagementAuth(guard, admin, oidc)
