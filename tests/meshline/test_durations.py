"""The durations users write ("30d", "1h30m"), read alike by the CLI and the server's flags."""

from __future__ import annotations

import pytest

from meshline.durations import DurationError, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * 86400),
        ("12h", 12 * 3600),
        ("90m", 5400),
        ("45s", 45),
        ("1h30m", 5400),
        ("1d2h3m4s", 93784),
        (" 10m ", 600),
        ("0", 0),
        ("0s", 0),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "30", "1.5h", "30x", "h", "-1h", "30m1h", "1h1h", "1H", "1h 30m", "30d!"]
)
def test_bad_durations_name_the_text(text: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    message = str(caught.value)
    assert "e.g. 30d, 12h, 1h30m" in message
    if text:
        assert repr(text) in message
