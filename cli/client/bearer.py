"""Client interceptors that send `authorization: Bearer <token>` on every call of a channel,
so that every stub made on it carries the credential (sync channels for the CLI, asyncio
channels for whatever runs in an event loop)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import grpc
import grpc.aio

from meshline.wire import AUTHORIZATION_HEADER


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str | bytes]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: Any


def _with_token(details: Any, header: tuple[str, str]) -> _CallDetails:
    metadata = [m for m in (details.metadata or ()) if m[0] != AUTHORIZATION_HEADER]
    return _CallDetails(
        details.method,
        details.timeout,
        [*metadata, header],
        details.credentials,
        details.wait_for_ready,
        getattr(details, "compression", None),
    )


class BearerInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the token to every call of a sync channel."""

    def __init__(self, token: str) -> None:
        self._header = (AUTHORIZATION_HEADER, f"Bearer {token}")

    def _go(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(_with_token(details, self._header), request)

    intercept_unary_unary = _go
    intercept_unary_stream = _go
    intercept_stream_unary = _go
    intercept_stream_stream = _go


def bearer_channel(channel: grpc.Channel, token: str) -> grpc.Channel:
    """`channel` sending `token` on every call (the channel itself when there is no token)."""
    return grpc.intercept_channel(channel, BearerInterceptor(token)) if token else channel


class _AioBearer:
    def __init__(self, token: str) -> None:
        self._header = (AUTHORIZATION_HEADER, f"Bearer {token}")

    async def _go(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return await continuation(_with_token(details, self._header), request)


class _AioUnaryUnary(_AioBearer, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await self._go(continuation, details, request)


class _AioUnaryStream(_AioBearer, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await self._go(continuation, details, request)


class _AioStreamUnary(_AioBearer, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await self._go(continuation, details, requests)


class _AioStreamStream(_AioBearer, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await self._go(continuation, details, requests)


def aio_bearer_interceptors(token: str) -> list[grpc.aio.ClientInterceptor]:
    """For `grpc.aio.insecure_channel(target, interceptors=...)`: the token on every call."""
    if not token:
        return []
    return [
        _AioUnaryUnary(token),
        _AioUnaryStream(token),
        _AioStreamUnary(token),
        _AioStreamStream(token),
    ]
