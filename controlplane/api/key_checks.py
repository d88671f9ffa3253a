"""Checks of KeyService requests: every problem named by its field, found before anything is
minted or stored. Pure (the clock is an argument)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from controlplane.api.credential_checks import RequestProblemsError, expiry
from controlplane.store.keys import KeyScope
from controlplane.store.names import dns1123_label_problem
from meshline.v1 import api_pb2 as api


class KeyRequestError(RequestProblemsError):
    """Every problem of one KeyService request."""


@dataclass(frozen=True)
class NewKey:
    """A checked CreateKey: the scope normalized (sorted, without repeats), the expiry in
    whole epoch seconds (None = never)."""

    name: str
    scope: KeyScope
    expires_at: int | None


def _names(values: Sequence[str], path: str, problems: list[tuple[str, str]]) -> tuple[str, ...]:
    for i, value in enumerate(values):
        if problem := dns1123_label_problem(value):
            problems.append((f"{path}[{i}]", problem))
    return tuple(sorted(set(values)))


def _roles(values: Sequence[str], problems: list[tuple[str, str]]) -> tuple[str, ...]:
    for i, role in enumerate(values):
        if not role:
            problems.append((f"spec.roles[{i}]", "must not be empty"))
        elif any(c.isspace() for c in role):
            problems.append((f"spec.roles[{i}]", f"{role!r} contains a space"))
    return tuple(sorted(set(values)))


def check_create(request: api.CreateKeyRequest, now: float) -> NewKey:
    """The key to create, or KeyRequestError with every problem."""
    problems: list[tuple[str, str]] = []
    if problem := dns1123_label_problem(request.name):
        problems.append(("name", problem))
    spec = request.spec
    if spec.environment and (problem := dns1123_label_problem(spec.environment)):
        problems.append(("spec.environment", problem))
    deployments = _names(spec.deployments, "spec.deployments", problems)
    roles = _roles(spec.roles, problems)
    expires_at = expiry(request.expires_in_s, spec.expires_at, now, problems)
    if problems:
        raise KeyRequestError(problems)
    return NewKey(request.name, KeyScope(spec.environment, deployments, roles), expires_at)


def check_name(name: str) -> None:
    """A key's name in get, revoke and rotate: required (an unknown one is NOT_FOUND)."""
    if not name:
        raise KeyRequestError([("name", "the key's name is required")])


def check_grace(grace_s: float) -> None:
    if not math.isfinite(grace_s) or grace_s < 0:
        raise KeyRequestError([("grace_s", f"must be 0 or more seconds, not {grace_s}")])


def check_environment_filter(environment: str) -> None:
    if environment and (problem := dns1123_label_problem(environment)):
        raise KeyRequestError([("environment", problem)])
