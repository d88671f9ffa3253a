"""Where a credential (an API key, a join token) stands: both live one lifecycle, Active until
revoked or expired, read from the stored times and the caller's clock (epoch seconds)."""

from __future__ import annotations

from typing import TypeVar

from meshline.phases import ApiKeyPhase, JoinTokenPhase

Phase = TypeVar("Phase", ApiKeyPhase, JoinTokenPhase)


def credential_phase(
    phases: type[Phase], revoked_at: float | None, expires_at: float | None, now: float
) -> Phase:
    """Revoked wins over Expired: a revoked credential never works again. Expired from
    `expires_at` on (None = never)."""
    if revoked_at is not None:
        return phases.REVOKED
    if expires_at is not None and now >= expires_at:
        return phases.EXPIRED
    return phases.ACTIVE
