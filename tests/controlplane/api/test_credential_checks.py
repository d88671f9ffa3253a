"""When a new credential (API key, join token) expires: the rule both create calls check by."""

from __future__ import annotations

import pytest

from controlplane.api.credential_checks import RequestProblemsError, expiry

NOW = 1_900_000_000.25  # 2030-03-17T17:46:40.25Z: not a whole second
YEAR = 365 * 86400


@pytest.mark.parametrize(
    ("expires_in_s", "expires_at", "max_lifetime_s", "expected"),
    [
        (0, "", None, None),  # never
        (0, "", YEAR, None),
        (60, "", None, 1_900_000_060),  # from the whole second, whole seconds on
        (0.5, "", None, 1_900_000_001),
        (YEAR, "", YEAR, 1_900_000_000 + YEAR),
        (10 * YEAR, "", None, 1_900_000_000 + 10 * YEAR),  # no limit unless one is given
        (0, "2030-03-17T17:47:00.5Z", None, 1_900_000_021),
        (0, "2030-03-17T19:47:00+02:00", YEAR, 1_900_000_020),
    ],
)
def test_expiry(
    expires_in_s: float, expires_at: str, max_lifetime_s: int | None, expected: int | None
) -> None:
    problems: list[tuple[str, str]] = []
    assert expiry(expires_in_s, expires_at, NOW, problems, max_lifetime_s) == expected
    assert problems == []


@pytest.mark.parametrize(
    ("expires_in_s", "expires_at", "max_lifetime_s", "problem"),
    [
        (
            60,
            "2031-01-01T00:00:00Z",
            None,
            ("expires_in_s", "give expires_in_s or spec.expires_at, not both"),
        ),
        (-5, "", None, ("expires_in_s", "must be 0 or more seconds, not -5")),
        (float("inf"), "", None, ("expires_in_s", "must be 0 or more seconds, not inf")),
        (float("nan"), "", YEAR, ("expires_in_s", "must be 0 or more seconds, not nan")),
        (
            YEAR + 1,
            "",
            YEAR,
            ("expires_in_s", "3.1536e+07 seconds is too long (at most 365 days; 0 = never)"),
        ),
        (
            0,
            "soon",
            None,
            ("spec.expires_at", "'soon' is not an RFC 3339 time (e.g. 2030-01-31T12:00:00Z)"),
        ),
        (
            0,
            "2031-01-01T00:00:00",
            None,
            (
                "spec.expires_at",
                "'2031-01-01T00:00:00' names no time zone (end it with Z or an offset like +02:00)",
            ),
        ),
        (
            0,
            "2030-03-17T17:46:40Z",
            None,
            ("spec.expires_at", "2030-03-17T17:46:40Z is in the past"),
        ),
        (
            0,
            "2032-01-01T00:00:00Z",
            YEAR,
            (
                "spec.expires_at",
                "2032-01-01T00:00:00Z is too far ahead (at most 365 days; 0 = never)",
            ),
        ),
    ],
)
def test_expiry_problems_name_the_field(
    expires_in_s: float, expires_at: str, max_lifetime_s: int | None, problem: tuple[str, str]
) -> None:
    problems: list[tuple[str, str]] = []
    assert expiry(expires_in_s, expires_at, NOW, problems, max_lifetime_s) is None
    assert problems == [problem]


def test_every_problem_is_one_line_naming_its_field() -> None:
    error = RequestProblemsError([("name", "must not be empty"), ("spec.roles[0]", "bad")])
    assert error.problems == (("name", "must not be empty"), ("spec.roles[0]", "bad"))
    assert str(error) == "name: must not be empty\nspec.roles[0]: bad"
