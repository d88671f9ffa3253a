"""RegionService's join-token calls: create (the secret is answered once), list, revoke.

The secret leaves the control plane once, in the answer that minted it; the store keeps its
hash, and logs name the token id only. Authorization (admins only) and the audit record are
the management interceptor's, as for every other call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NoReturn

import grpc

from controlplane.api.join_token_checks import (
    JoinTokenRequestError,
    check_create,
    check_region_filter,
    check_token_id,
)
from controlplane.store import Store, StoreError
from controlplane.store.join_tokens import (
    JoinTokenExistsError,
    JoinTokenNotFoundError,
    StoredJoinToken,
    create_join_token,
    list_join_tokens,
    revoke_join_token,
    to_join_token,
)
from controlplane.store.keys import rfc3339
from meshline import join_token
from meshline.v1 import api_pb2 as api
from meshline.v1.resources_pb2 import RegionSpec

log = logging.getLogger(__name__)

# grpc ships no type stubs; the servicer context is typed loosely on purpose.
Context = Any
# Token ids are random (32 bits); a clash is retried with a fresh one this many times.
_MINT_TRIES = 5


async def _abort(context: Context, exc: Exception) -> NoReturn:
    if isinstance(exc, JoinTokenRequestError):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    elif isinstance(exc, JoinTokenNotFoundError):
        await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
    await context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
    raise AssertionError("abort returned")


class JoinTokens:
    """The three join-token calls over the store (controlplane/store/join_tokens.py), for
    RegionServicer to answer with. `clock`: epoch seconds every decision uses."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def CreateJoinToken(
        self, request: api.CreateJoinTokenRequest, context: Context
    ) -> api.CreateJoinTokenResponse:
        now = self._clock()
        try:
            new = check_create(request, now)
            stored, secret = self._create(new.region, new.facts, new.expires_at, now)
        except (JoinTokenRequestError, StoreError) as exc:
            await _abort(context, exc)
        expiry = "never" if stored.expires_at is None else f"at {rfc3339(stored.expires_at)}"
        log.info(
            "join token %s created for region %s (expires %s)",
            stored.token_id,
            stored.region,
            expiry,
        )
        return api.CreateJoinTokenResponse(token=to_join_token(stored, now), secret=secret)

    def _create(
        self, region: str, facts: RegionSpec, expires_at: int | None, now: float
    ) -> tuple[StoredJoinToken, str]:
        for _ in range(_MINT_TRIES):
            minted = join_token.mint()
            try:
                stored = create_join_token(
                    self._store, minted.token_id, minted.secret, region, facts, expires_at, now
                )
            except JoinTokenExistsError:
                continue
            return stored, str(minted)
        raise JoinTokenExistsError(f"no free join token id after {_MINT_TRIES} tries")

    async def ListJoinTokens(
        self, request: api.ListJoinTokensRequest, context: Context
    ) -> api.ListJoinTokensResponse:
        now = self._clock()
        try:
            check_region_filter(request.region)
            tokens = list_join_tokens(self._store, request.region)
        except (JoinTokenRequestError, StoreError) as exc:
            await _abort(context, exc)
        return api.ListJoinTokensResponse(tokens=[to_join_token(t, now) for t in tokens])

    async def RevokeJoinToken(
        self, request: api.RevokeJoinTokenRequest, context: Context
    ) -> api.RevokeJoinTokenResponse:
        now = self._clock()
        try:
            check_token_id(request.name)
            token = revoke_join_token(self._store, request.name, now)
        except (JoinTokenRequestError, StoreError) as exc:
            await _abort(context, exc)
        log.info("join token %s of region %s revoked", token.token_id, token.region)
        return api.RevokeJoinTokenResponse(token=to_join_token(token, now))
