"""A request stream's first message, read before the servicer gets the stream.

The management guard authorizes a client stream by its first message, and the mesh port's ADS
gate checks the node id an Envoy's first request names; both then hand the servicer the whole
stream, that first message included, as if nobody had read it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import TypeVar

Message = TypeVar("Message")


async def _reattached(
    first: Message | None, rest: AsyncIterator[Message]
) -> AsyncIterator[Message]:
    if first is not None:
        yield first
    async for message in rest:
        yield message


async def peek_first(
    requests: AsyncIterable[Message],
) -> tuple[Message | None, AsyncIterator[Message]]:
    """The stream's first message (None: the client sent none and closed it) and the whole
    stream again, that message first."""
    rest = aiter(requests)
    first = await anext(rest, None)
    return first, _reattached(first, rest)
