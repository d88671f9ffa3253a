"""Times as the API and the logs show them: RFC 3339 in UTC with a `Z` ("2030-01-31T12:00:00Z"),
and RFC 3339 as users give it (any offset, but one must be named).

In the bottom layer because the control plane (token and certificate times, the audit log), the
agent (the certificate its gateway serves) and the CLI (`audit --since`) write and read them alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

# How much of the time is written (datetime.isoformat's names): "auto" writes microseconds
# only when there are some.
Precision = Literal["auto", "seconds", "milliseconds"]


def rfc3339(when: datetime, precision: Precision = "auto") -> str:
    """`when` in UTC with a `Z`; `precision` as datetime.isoformat's `timespec`."""
    return when.astimezone(UTC).isoformat(timespec=precision).replace("+00:00", "Z")


def rfc3339_of_epoch(epoch_s: float, precision: Precision = "seconds") -> str:
    """Epoch seconds `epoch_s` in UTC with a `Z`, to the second unless told otherwise."""
    return rfc3339(datetime.fromtimestamp(epoch_s, UTC), precision)


def parse_rfc3339(text: str) -> float:
    """Epoch seconds of an RFC 3339 time that names its offset ("2030-01-01T00:00:00Z")."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 time (e.g. 2030-01-31T12:00:00Z)") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} names no time zone (end it with Z or an offset like +02:00)")
    return moment.timestamp()
