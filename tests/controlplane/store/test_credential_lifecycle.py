"""Where an API key or a join token stands, from its stored times and the clock."""

from __future__ import annotations

import pytest

from controlplane.store.credential_lifecycle import credential_phase
from meshline.phases import ApiKeyPhase, JoinTokenPhase


@pytest.mark.parametrize(
    ("revoked_at", "expires_at", "now", "phase"),
    [
        (None, None, 100.0, "Active"),  # never expires
        (None, 200.0, 199.9, "Active"),
        (None, 200.0, 200.0, "Expired"),  # from expires_at on
        (None, 200.0, 300.0, "Expired"),
        (150.0, None, 100.0, "Revoked"),  # revoked is revoked, whatever the clock says
        (150.0, 200.0, 300.0, "Revoked"),  # revoked wins over expired
    ],
)
@pytest.mark.parametrize("phases", [ApiKeyPhase, JoinTokenPhase])
def test_credential_phase(
    phases: type[ApiKeyPhase] | type[JoinTokenPhase],
    revoked_at: float | None,
    expires_at: float | None,
    now: float,
    phase: str,
) -> None:
    found = credential_phase(phases, revoked_at, expires_at, now)
    assert found is phases(phase)
