"""Checks of the join-token calls: every problem named by its field, found before anything is
minted or stored. Pure (the clock is an argument)."""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.api.credential_checks import RequestProblemsError, expiry
from controlplane.api.registration import normalized_region_spec, region_problems
from controlplane.store.names import dns1123_label_problem
from meshline.join_token import id_problem
from meshline.v1 import api_pb2 as api
from meshline.v1.resources_pb2 import RegionSpec

# The longest a join token may live (0 = never is allowed, and said so).
MAX_LIFETIME_S = 365 * 86400


class JoinTokenRequestError(RequestProblemsError):
    """Every problem of one join-token request."""


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
    expires_at = expiry(
        request.expires_in_s, request.spec.expires_at, now, problems, MAX_LIFETIME_S
    )
    if problems:
        raise JoinTokenRequestError(problems)
    return NewJoinToken(region, normalized_region_spec(request.spec.facts), expires_at)


def check_region_filter(region: str) -> None:
    if region and (problem := dns1123_label_problem(region)):
        raise JoinTokenRequestError([("region", problem)])


def check_token_id(token_id: str) -> None:
    """A token's id in revoke: required and well formed (an unknown one is NOT_FOUND)."""
    if not token_id:
        raise JoinTokenRequestError([("name", "the join token's id is required")])
    if problem := id_problem(token_id):
        raise JoinTokenRequestError([("name", problem)])
