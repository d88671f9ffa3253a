"""Who called, as a metric label: the `x-meshline-principal` the entry gateway set, bounded.

The gateway verifies the caller (API key name or JWT subject) and sets the header; a worker only
reads it. A label per principal would let the callers grow the worker's metrics without limit, so
the first MAX_PRINCIPALS distinct principals get their own label and every later one is counted
as OTHER. A request without the header (or with an empty one) is ANONYMOUS.
"""

from __future__ import annotations

ANONYMOUS = "anonymous"
OTHER = "other"
# Distinct principal labels (ANONYMOUS included) before the rest are counted as OTHER.
MAX_PRINCIPALS = 100


class PrincipalLabels:
    """Maps a header value to its label; remembers the labels it handed out, at most `limit`."""

    def __init__(self, limit: int = MAX_PRINCIPALS) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self._admitted: set[str] = set()

    def label(self, value: str | None) -> str:
        """ANONYMOUS for no value, the value itself while there is room, OTHER after."""
        principal = value or ANONYMOUS
        if principal in self._admitted:
            return principal
        if len(self._admitted) < self.limit:
            self._admitted.add(principal)
            return principal
        return OTHER

    def __len__(self) -> int:
        return len(self._admitted)
