"""What `meshline keys` and `meshline regions token` share: both hand out a secret shown once
(as text or JSON), take durations and comma-separated lists, and list things that are Active
until revoked or expired."""

from __future__ import annotations

from enum import Enum

from cli.client.api import fail
from meshline.durations import DurationError, parse_duration
from meshline.phases import ApiKeyPhase, JoinTokenPhase

# API keys and join tokens live one lifecycle, in the same words (meshline.phases).
_PHASE_COLORS: dict[str, str] = {
    phase: color
    for lifecycle in (ApiKeyPhase, JoinTokenPhase)
    for phase, color in (
        (lifecycle.ACTIVE, "green"),
        (lifecycle.REVOKED, "red"),
        (lifecycle.EXPIRED, "yellow"),
    )
}


class SecretOutput(str, Enum):
    """How a new secret is printed: alone on stdout, or in a JSON document with its resource."""

    text = "text"
    json = "json"


def phase_cell(phase: str) -> str:
    """A key's or join token's phase for a table, coloured (rich markup) when it is known."""
    color = _PHASE_COLORS.get(phase)
    return f"[{color}]{phase}[/{color}]" if color else phase


def duration_seconds(text: str, option: str) -> int:
    """Seconds of a duration option ("1h30m", "7d", "0"); a CLI error naming `option` otherwise."""
    try:
        return parse_duration(text)
    except DurationError as exc:
        raise fail(f"{option}: {exc}") from None


def comma_list(value: str | None) -> list[str]:
    """The items of a comma-separated option, blanks dropped (None: none)."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]
