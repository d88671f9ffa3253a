"""RFC 3339 as the control plane, the agent and the CLI write it (UTC, with a `Z`) and read it
(any offset, but one named)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from meshline.times import Precision, parse_rfc3339, rfc3339, rfc3339_of_epoch

PARIS = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("when", "precision", "text"),
    [
        (datetime(2030, 1, 31, 12, tzinfo=UTC), "auto", "2030-01-31T12:00:00Z"),
        (datetime(2030, 1, 31, 14, tzinfo=PARIS), "auto", "2030-01-31T12:00:00Z"),
        (
            datetime(2030, 1, 31, 12, 0, 0, 120, tzinfo=UTC),
            "auto",
            "2030-01-31T12:00:00.000120Z",
        ),
        (
            datetime(2030, 1, 31, 12, 0, 0, 999_999, tzinfo=UTC),
            "milliseconds",
            "2030-01-31T12:00:00.999Z",  # cut, never rounded up into the next second
        ),
        (datetime(2030, 1, 31, 12, 0, 0, 999_999, tzinfo=UTC), "seconds", "2030-01-31T12:00:00Z"),
    ],
)
def test_rfc3339(when: datetime, precision: Precision, text: str) -> None:
    assert rfc3339(when, precision) == text


@pytest.mark.parametrize(
    ("epoch_s", "precision", "text"),
    [
        (1_900_000_000, "seconds", "2030-03-17T17:46:40Z"),
        (1_900_000_000.25, "seconds", "2030-03-17T17:46:40Z"),
        (1_900_000_000.25, "milliseconds", "2030-03-17T17:46:40.250Z"),
        (0, "milliseconds", "1970-01-01T00:00:00.000Z"),
    ],
)
def test_rfc3339_of_epoch(epoch_s: float, precision: Precision, text: str) -> None:
    assert rfc3339_of_epoch(epoch_s, precision) == text


def test_rfc3339_of_epoch_is_to_the_second_unless_told() -> None:
    assert rfc3339_of_epoch(1_900_000_000.75) == "2030-03-17T17:46:40Z"


@pytest.mark.parametrize(
    ("text", "epoch_s"),
    [
        ("2030-03-17T17:46:40Z", 1_900_000_000),
        ("2030-03-17T19:46:40+02:00", 1_900_000_000),
        ("2030-03-17T17:46:40.250Z", 1_900_000_000.25),
        (rfc3339_of_epoch(1_900_000_000.25, "milliseconds"), 1_900_000_000.25),
    ],
)
def test_parse_rfc3339(text: str, epoch_s: float) -> None:
    assert parse_rfc3339(text) == epoch_s


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "'soon' is not an RFC 3339 time (e.g. 2030-01-31T12:00:00Z)"),
        ("", "'' is not an RFC 3339 time (e.g. 2030-01-31T12:00:00Z)"),
        (
            "2031-01-01T00:00:00",
            "'2031-01-01T00:00:00' names no time zone (end it with Z or an offset like +02:00)",
        ),
    ],
)
def test_parse_rfc3339_names_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_rfc3339(text)
    assert str(caught.value) == message
