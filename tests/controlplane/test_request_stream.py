"""peek_first: the first message read, and the whole stream handed on unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from controlplane.request_stream import peek_first


async def _stream(messages: list[str], read: list[str]) -> AsyncIterator[str]:
    for message in messages:
        read.append(message)
        yield message


@pytest.mark.parametrize(
    ("messages", "first"),
    [
        ([], None),
        (["hello"], "hello"),
        (["hello", "a", "b"], "hello"),
    ],
)
async def test_the_first_message_is_read_and_handed_on_with_the_rest(
    messages: list[str], first: str | None
) -> None:
    read: list[str] = []
    peeked, whole = await peek_first(_stream(messages, read))
    assert peeked == first
    assert read == messages[:1]  # the rest waits for the servicer
    assert [message async for message in whole] == messages
