"""Checks of the join-token calls: every problem named by its field, found before anything is
minted or stored. Pure (the clock is an argument)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from controlplane.api.key_checks import parse_rfc3339
from controlplane.api.registration import normalized_region_spec, region_problems
from controlplane.store.names import dns1123_label_problem
from meshline.join_token import id_problem
from meshline.v1 import api_pb2 as api
from meshline.v1.resources_pb2 import RegionSpec

# The longest a join token may live (0 = never is allowed, and said so).
MAX_LIFETIME_S = 365 * 86400


class JoinTokenRequestError(ValueError):
    """Every problem of one request, one line each as `field: message`."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{path}: {message}" for path, message in self.problems))


@dataclass(frozen=True)
class NewJoinToken:
    """A checked CreateJoinToken: the facts normalized (codes upper-cased), the expiry in
    whole epoch seconds (None = never)."""

    region: str
    facts: RegionSpec
    expires_at: int | None


def check_create(request: api.CreateJoinTokenRequest, now: float) -> NewJoinToken:
    """The token to create, or JoinTokenRequestError with every problem."""
    problems: list[tuple[str, str]] = []
    region = request.spec.region
    if problem := dns1123_label_problem(region):
        problems.append(("spec.region", problem))
    else:
        # Checked as `meshline apply` checks a Region with this spec, paths moved under facts.
        for error in region_problems(region, request.spec.facts):
            path = error.field_path.removeprefix("spec.")
            problems.append((f"spec.facts.{path}", error.message))
    expires_at = _expiry(request, now, problems)
    if problems:
        raise JoinTokenRequestError(problems)
    return NewJoinToken(region, normalized_region_spec(request.spec.facts), expires_at)


def _expiry(
    request: api.CreateJoinTokenRequest, now: float, problems: list[tuple[str, str]]
) -> int | None:
    seconds = request.expires_in_s
    text = request.spec.expires_at
    limit = f"at most {MAX_LIFETIME_S // 86400} days; 0 = never"
    if seconds and text:
        problems.append(("expires_in_s", "give expires_in_s or spec.expires_at, not both"))
        return None
    if seconds:
        if not math.isfinite(seconds) or seconds < 0:
            problems.append(("expires_in_s", f"must be 0 or more seconds, not {seconds}"))
            return None
        if seconds > MAX_LIFETIME_S:
            problems.append(("expires_in_s", f"{seconds:g} seconds is too long ({limit})"))
            return None
        return math.floor(now) + math.ceil(seconds)
    if not text:
        return None
    try:
        at = parse_rfc3339(text)
    except ValueError as exc:
        problems.append(("spec.expires_at", str(exc)))
        return None
    if at <= now:
        problems.append(("spec.expires_at", f"{text} is in the past"))
        return None
    if at - now > MAX_LIFETIME_S:
        problems.append(("spec.expires_at", f"{text} is too far ahead ({limit})"))
        return None
    return math.ceil(at)


def check_region_filter(region: str) -> None:
    if region and (problem := dns1123_label_problem(region)):
        raise JoinTokenRequestError([("region", problem)])


def check_token_id(token_id: str) -> None:
    """A token's id in revoke: required and well formed (an unknown one is NOT_FOUND)."""
    if not token_id:
        raise JoinTokenRequestError([("name", "the join token's id is required")])
    if problem := id_problem(token_id):
        raise JoinTokenRequestError([("name", problem)])
