"""What the checks of the calls that create credentials (KeyService, the join-token calls)
share: every problem of a request in one error, and when the new credential expires. Pure (the
clock is an argument)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from meshline.times import parse_rfc3339


class RequestProblemsError(ValueError):
    """Every problem of one request, one line each as `field: message`."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{path}: {message}" for path, message in self.problems))


def expiry(
    expires_in_s: float,
    expires_at: str,
    now: float,
    problems: list[tuple[str, str]],
    max_lifetime_s: int | None = None,
) -> int | None:
    """When a new credential expires, in whole epoch seconds (None = never), from a request's
    `expires_in_s` (0 = not given) or its `spec.expires_at` (RFC 3339; "" = not given), never
    both; at most `max_lifetime_s` ahead when given. A problem found is added to `problems`
    (and None returned)."""
    limit = (
        f"at most {max_lifetime_s // 86400} days; 0 = never" if max_lifetime_s is not None else ""
    )
    if expires_in_s and expires_at:
        problems.append(("expires_in_s", "give expires_in_s or spec.expires_at, not both"))
        return None
    if expires_in_s:
        if not math.isfinite(expires_in_s) or expires_in_s < 0:
            problems.append(("expires_in_s", f"must be 0 or more seconds, not {expires_in_s}"))
            return None
        if max_lifetime_s is not None and expires_in_s > max_lifetime_s:
            problems.append(("expires_in_s", f"{expires_in_s:g} seconds is too long ({limit})"))
            return None
        # From a whole `now` (an API key's token `iat`), so `exp - iat` is the duration asked for.
        return math.floor(now) + math.ceil(expires_in_s)
    if not expires_at:
        return None
    try:
        at = parse_rfc3339(expires_at)
    except ValueError as exc:
        problems.append(("spec.expires_at", str(exc)))
        return None
    if at <= now:
        problems.append(("spec.expires_at", f"{expires_at} is in the past"))
        return None
    if max_lifetime_s is not None and at - now > max_lifetime_s:
        problems.append(("spec.expires_at", f"{expires_at} is too far ahead ({limit})"))
        return None
    return math.ceil(at)
