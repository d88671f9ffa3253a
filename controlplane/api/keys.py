"""KeyService: API keys created, listed, revoked and rotated (`meshline keys ...`).

A secret leaves the control plane once, in the answer that minted it; logs name the key and
its key id only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NoReturn

import grpc

from controlplane.api.key_checks import (
    KeyRequestError,
    check_create,
    check_environment_filter,
    check_grace,
    check_name,
)
from controlplane.api.key_tokens import KeyClaims, MintedKey, mint_key
from controlplane.store import NotFoundError, Store, StoreError
from controlplane.store.keys import (
    KeyExistsError,
    KeyStateError,
    StoredKey,
    create_key,
    get_key,
    list_keys,
    revoke_key,
    rotate_key,
    to_api_key,
)
from meshline.v1 import api_pb2 as api
from meshline.v1 import api_pb2_grpc
from meshline.v1.resources_pb2 import ApiKey

log = logging.getLogger(__name__)

# grpc ships no type stubs; the servicer context is typed loosely on purpose.
Context = Any
# Which regions enforce a key's current state and which do not yet: (enforced_in, pending_in).
Enforcement = Callable[[ApiKey], tuple[list[str], list[str]]]


async def _abort(context: Context, exc: Exception) -> NoReturn:
    if isinstance(exc, KeyRequestError):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    elif isinstance(exc, NotFoundError):
        await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
    elif isinstance(exc, KeyExistsError):
        await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
    elif isinstance(exc, KeyStateError):
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    await context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
    raise AssertionError("abort returned")


def _claims(key: StoredKey, issued_at: float) -> KeyClaims:
    expires = None if key.expires_at is None else int(key.expires_at)
    scope = key.scope
    return KeyClaims(
        key.name, int(issued_at), expires, scope.environment, scope.deployments, scope.roles
    )


class KeyServicer(api_pb2_grpc.KeyServiceServicer):
    """The five KeyService calls over the store (controlplane/store/keys.py).

    `enforcement`, when given, fills each answered key's enforced_in/pending_in; `clock` is
    the time every decision uses (epoch seconds).
    """

    def __init__(
        self,
        store: Store,
        enforcement: Enforcement | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._enforcement = enforcement
        self._clock = clock

    def _answer(self, key: StoredKey, now: float) -> ApiKey:
        message = to_api_key(key, now)
        if self._enforcement is not None:
            enforced, pending = self._enforcement(message)
            message.status.enforced_in.extend(enforced)
            message.status.pending_in.extend(pending)
        return message

    async def CreateKey(
        self, request: api.CreateKeyRequest, context: Context
    ) -> api.CreateKeyResponse:
        now = self._clock()
        try:
            new = check_create(request, now)
            scope = new.scope
            claims = KeyClaims(
                new.name,
                int(now),
                new.expires_at,
                scope.environment,
                scope.deployments,
                scope.roles,
            )
            minted = mint_key(claims)
            stored = create_key(
                self._store, new.name, scope, new.expires_at, minted.key_id, minted.public_key, now
            )
        except (KeyRequestError, StoreError) as exc:
            await _abort(context, exc)
        log.info("API key %s created (key id %s)", stored.name, stored.key_id)
        return api.CreateKeyResponse(key=self._answer(stored, now), secret=minted.secret)

    async def ListKeys(
        self, request: api.ListKeysRequest, context: Context
    ) -> api.ListKeysResponse:
        now = self._clock()
        try:
            check_environment_filter(request.environment)
            keys = list_keys(self._store, request.environment)
        except (KeyRequestError, StoreError) as exc:
            await _abort(context, exc)
        return api.ListKeysResponse(keys=[self._answer(k, now) for k in keys])

    async def GetKey(self, request: api.GetKeyRequest, context: Context) -> api.GetKeyResponse:
        now = self._clock()
        try:
            check_name(request.name)
            key = get_key(self._store, request.name)
        except (KeyRequestError, StoreError) as exc:
            await _abort(context, exc)
        return api.GetKeyResponse(key=self._answer(key, now))

    async def RevokeKey(
        self, request: api.RevokeKeyRequest, context: Context
    ) -> api.RevokeKeyResponse:
        now = self._clock()
        try:
            check_name(request.name)
            key = revoke_key(self._store, request.name, now)
        except (KeyRequestError, StoreError) as exc:
            await _abort(context, exc)
        log.info("API key %s revoked (key id %s)", key.name, key.key_id)
        return api.RevokeKeyResponse(key=self._answer(key, now))

    async def RotateKey(
        self, request: api.RotateKeyRequest, context: Context
    ) -> api.RotateKeyResponse:
        now = self._clock()
        try:
            check_name(request.name)
            check_grace(request.grace_s)
            minted, key = self._rotate(request.name, request.grace_s, now)
        except (KeyRequestError, StoreError) as exc:
            await _abort(context, exc)
        log.info(
            "API key %s rotated (key id %s, previous %s)",
            key.name,
            key.key_id,
            key.previous_key_id,
        )
        return api.RotateKeyResponse(key=self._answer(key, now), secret=minted.secret)

    def _rotate(self, name: str, grace_s: float, now: float) -> tuple[MintedKey, StoredKey]:
        # The scope and expiry are fixed at creation, so claims read before the transaction
        # stay right; rotate_key checks the key's phase again inside it.
        minted = mint_key(_claims(get_key(self._store, name), now))
        stored = rotate_key(self._store, name, minted.key_id, minted.public_key, grace_s, now)
        return minted, stored
