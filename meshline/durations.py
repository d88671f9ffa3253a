"""Durations as users write them ("30d", "12h", "1h30m", "0").

In the bottom layer because the CLI (key and join-token lifetimes, `audit --since`) and the
server's flags (certificate lifetimes) read them alike, and the client must not import the
control plane to do so.
"""

from __future__ import annotations

import re

_UNITS: dict[str, int] = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([dhms])")


class DurationError(ValueError):
    """Text that is not a duration; the message names it."""


def parse_duration(text: str) -> int:
    """Seconds in "30d", "12h", "90m", "45s", "1h30m" (units d, h, m, s, largest first, each
    once); "0" is zero. DurationError naming the text otherwise."""
    value = text.strip()
    if value == "0":
        return 0
    hint = "use whole numbers with units d, h, m, s, largest first: e.g. 30d, 12h, 1h30m, 45s"
    if not value:
        raise DurationError(f"empty duration: {hint}")
    total = 0
    position = 0
    last_rank = -1
    ranks = list(_UNITS)
    for match in _PART.finditer(value):
        if match.start() != position:
            break
        rank = ranks.index(match.group(2))
        if rank <= last_rank:
            raise DurationError(f"invalid duration {text!r}: {hint}")
        last_rank = rank
        total += int(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(value):
        raise DurationError(f"invalid duration {text!r}: {hint}")
    return total
