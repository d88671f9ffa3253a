"""The phases a deployment and a rollout go through: one enum each, shared by the control plane
(which sets them in status) and the CLI (which shows and waits for them). String enums, so a
phase is its wire value (`DeploymentStatus.phase`, `Rollout.phase`)."""

from __future__ import annotations

from enum import StrEnum


class DeploymentPhase(StrEnum):
    PENDING = "Pending"
    READY = "Ready"
    FAILED = "Failed"
    DEACTIVATED = "Deactivated"


class RolloutPhase(StrEnum):
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    SUCCEEDED = "Succeeded"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"


# A rollout that still steers traffic (the old version keeps serving beside the new one).
ROLLING = frozenset({RolloutPhase.PROGRESSING, RolloutPhase.PAUSED})
# A rollout that ended without the new version.
ENDED_WITHOUT_TARGET = frozenset({RolloutPhase.ROLLED_BACK, RolloutPhase.ABORTED})


class ApiKeyPhase(StrEnum):
    """Where an API key stands (`ApiKeyStatus.phase`)."""

    ACTIVE = "Active"
    REVOKED = "Revoked"
    EXPIRED = "Expired"


class JoinTokenPhase(StrEnum):
    """Where a join token stands (`JoinTokenStatus.phase`)."""

    ACTIVE = "Active"
    REVOKED = "Revoked"
    EXPIRED = "Expired"
