"""Pages of a listing ordered by key: which items a page holds, and its opaque tokens.

A token names the last key of the page it follows and the filter it was made under (a token
is only good for the listing it came from); it is base64url of JSON, opaque to clients, and a
token this server could not have made is refused with a message that says so. Keys, not
offsets: a deployment created or deleted between two pages neither shifts nor repeats the rest,
and a page costs what it holds: the source is asked for the items after the token's key, one
more than the page holds (whether there is a next page), never for the whole listing.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

# A page holds at most this many items, whatever the client asks.
MAX_PAGE_SIZE = 1000


class PageTokenError(ValueError):
    """A page token this listing did not give out (or a negative page size)."""


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_token: str = ""


# What a paged listing reads: the items after a key (None: from the first), in key order, at
# most `limit` of them (None: all the rest).
Fetch = Callable[[tuple[str, ...] | None, int | None], Sequence[T]]


def keyset_page(
    fetch: Fetch[T],
    key: Callable[[T], tuple[str, ...]],
    size: int,
    token: str,
    scope: str = "",
    key_length: int | None = None,
) -> Page[T]:
    """The page that `token` points at, read through `fetch`; `size` 0: all the rest.
    `scope` names the filter the listing ran under (a token made under another is refused);
    `key_length`, when given, is how many parts this listing's keys have."""
    if size < 0:
        raise PageTokenError(f"page_size must not be negative, got {size}")
    after = _decode(token, scope, key_length) if token else None
    if size == 0:
        return Page(fetch(after, None))
    size = min(size, MAX_PAGE_SIZE)
    items = fetch(after, size + 1)
    page = items[:size]
    more = len(items) > size
    return Page(page, encode_token(key(page[-1]), scope) if more and page else "")


def page_of(
    items: Sequence[T],
    key: Callable[[T], tuple[str, ...]],
    size: int,
    token: str,
    scope: str = "",
) -> Page[T]:
    """The page of `items` (sorted by `key`, all in memory) that `token` points at."""

    def fetch(after: tuple[str, ...] | None, limit: int | None) -> Sequence[T]:
        start = 0 if after is None else bisect.bisect_right(items, after, key=key)
        return items[start:] if limit is None else items[start : start + limit]

    return keyset_page(fetch, key, size, token, scope)


def encode_token(last: tuple[str, ...], scope: str = "") -> str:
    data = json.dumps({"after": list(last), "scope": scope}, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def _decode(token: str, scope: str, key_length: int | None = None) -> tuple[str, ...]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        after = data["after"]
        made_under = data["scope"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise PageTokenError(
            f"page_token {token[:40]!r} is not one this listing gave out (pass the "
            "next_page_token of the previous answer, or none to start over)"
        ) from None
    if (
        not isinstance(after, list)
        or not all(isinstance(part, str) for part in after)
        or (key_length is not None and len(after) != key_length)
    ):
        raise PageTokenError(f"page_token {token[:40]!r} is not one this listing gave out")
    if made_under != scope:
        raise PageTokenError(
            f"page_token was given out for a listing of environment {made_under!r}, "
            f"not {scope!r}: ask with the same environment, or start over without a token"
        )
    return tuple(after)
