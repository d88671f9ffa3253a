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
        """Keep the identity provider's keys fresh until cancelled (nothing to do without)."""
        if self.oidc is None:
            await asyncio.Event().wait()
        else:
            await self.oidc.run()


def management_auth(store: Store, state_dir: Path, config: AuthConfig) -> ManagementAuth:
    """The guard for `grpc.aio.server(interceptors=[...])`, after making sure an admin
    credential exists (see bootstrap.py)."""
    admin = ensure_admin_token(store, state_dir, time.time(), config.reset_admin_token)
    oidc = OidcProvider(config.oidc) if config.oidc is not None else None
    guard = ManagementGuard(store, Authenticator(store, oidc), AuditLog(store))
    return ManagementAuth(guard, admin, oidc)
