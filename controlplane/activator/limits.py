"""How many requests the activator holds at once: per gateway region and in all.

A held request costs a connection's stream and a task until its cold start ends, so a burst
(or a gateway gone wrong) must not hold without bound. Over a cap the request is answered at
once like a cold-start timeout (UNAVAILABLE / 503, not retried by Envoy), naming the limit.
Pure; table-tested.
"""

from __future__ import annotations

from dataclasses import dataclass

# Far above a real burst of first requests (one gateway's clients during one cold start), far
# below what fills the control plane's memory or file descriptors.
DEFAULT_PER_GATEWAY = 1_000
DEFAULT_TOTAL = 4_000


@dataclass(frozen=True)
class HoldLimits:
    """At most `per_gateway` requests held from one gateway's region, `total` in all."""

    per_gateway: int = DEFAULT_PER_GATEWAY
    total: int = DEFAULT_TOTAL

    def __post_init__(self) -> None:
        if self.per_gateway < 1 or self.total < 1:
            raise ValueError(f"hold limits must be at least 1, not {self}")


@dataclass(frozen=True)
class HeldNow:
    """Requests held at this moment: from the asking gateway's region, and in all."""

    from_gateway: int
    total: int


def over_limit(
    limits: HoldLimits, held: HeldNow, gateway: str, deployment: str, environment: str
) -> str | None:
    """Why one more request from `gateway` cannot be held now, or None when it can."""
    if held.from_gateway >= limits.per_gateway:
        why = (
            f"the activator already holds {held.from_gateway} requests from gateway "
            f"'{gateway}' (at most {limits.per_gateway} per gateway)"
        )
    elif held.total >= limits.total:
        why = f"the activator already holds {held.total} requests in all (at most {limits.total})"
    else:
        return None
    return (
        f"deployment '{deployment}' (environment '{environment}') is waking from zero and "
        f"{why}; retry shortly"
    )
