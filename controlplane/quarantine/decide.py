"""Which deployments a region's config leaves out after its Envoy rejected an update.

A state-of-the-world NACK rejects a whole update of one type, and Envoy's text seldom names the
resource at fault (an out-of-range duration says only "Duration out-of-range"). One bad
deployment would then freeze the region: every later update carries it again and is rejected
too. So the control plane attributes each rejection to a deployment and quarantines it: that
region's config leaves it out until the deployment's configuration changes.

Attribution compares the rejected config with the last one Envoy ACKed whole (`accepted`):
only deployments whose route differs can be at fault, and of those only the ones that own a
resource the rejected update changed (when every changed resource has an owner; the shared
listener and route table have none). One left: it is quarantined. Several: bisect — push the
first half of them at their new form, everything else at its accepted form (a deployment
without one is left out meanwhile); an ACK clears that half and moves on to the rest, a NACK
narrows to that half. Every round either grows `accepted` or shrinks the suspects, so it ends.

Pure: `decide` and `compose` are table-tested; `controlplane.quarantine.gateways` does the I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from controlplane.ir.model import DeploymentRoute

RouteKey = tuple[str, str]  # (environment, deployment)


def route_key(route: DeploymentRoute) -> RouteKey:
    return (route.environment, route.deployment)


@dataclass(frozen=True)
class Quarantine:
    """A deployment left out of one region's config: what that region's Envoy said about it."""

    fingerprint: str  # the deployment's configuration then; any change lifts the quarantine
    type_url: str  # the xDS type Envoy rejected
    version: str  # the rejected version
    message: str  # Envoy's error_detail text


class Outcome(enum.Enum):
    PENDING = "pending"  # not answered yet (or answered for an older config)
    ACKED = "acked"  # every type of the config is ACKed
    REJECTED = "rejected"  # Envoy NACKed one type of it


@dataclass(frozen=True)
class Verdict:
    """What the region's Envoy said about the config last pushed to it."""

    outcome: Outcome
    type_url: str = ""
    version: str = ""
    message: str = ""
    changed: frozenset[str] = frozenset()  # names new or changed in the rejected update


PENDING = Verdict(Outcome.PENDING)
ACKED = Verdict(Outcome.ACKED)


@dataclass(frozen=True)
class Pushed:
    """The config last pushed to a region: its routes, and the owner of each resource name."""

    routes: Mapping[RouteKey, DeploymentRoute]
    owners: Mapping[str, RouteKey] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class RegionState:
    """What one region's quarantine knows between rebuilds."""

    # The routes of the last config the region's Envoy ACKed whole.
    accepted: Mapping[RouteKey, DeploymentRoute] = field(
        default_factory=lambda: MappingProxyType({})
    )
    quarantined: Mapping[RouteKey, Quarantine] = field(default_factory=lambda: MappingProxyType({}))
    # Bisecting: one of these broke the rejected update; `trying` are pushed at their new form.
    suspects: tuple[RouteKey, ...] = ()
    trying: frozenset[RouteKey] = frozenset()
    # Whom a NACK that still stands concerns (None: every deployment of the region).
    blame: frozenset[RouteKey] | None = None


def decide(
    state: RegionState,
    pushed: Pushed | None,
    verdict: Verdict,
    fingerprints: Mapping[RouteKey, str],
) -> RegionState:
    """The next state, given Envoy's verdict on `pushed` and every deployment's fingerprint.

    A quarantine is lifted when its deployment's fingerprint changed (or it is gone).
    """
    quarantined = {
        key: q for key, q in state.quarantined.items() if fingerprints.get(key) == q.fingerprint
    }
    suspects = tuple(k for k in state.suspects if k in fingerprints and k not in quarantined)
    state = replace(state, quarantined=MappingProxyType(quarantined), suspects=suspects)
    if pushed is None or verdict.outcome is Outcome.PENDING:
        return replace(state, trying=_trying(suspects, state.trying))
    if verdict.outcome is Outcome.ACKED:
        remaining = tuple(k for k in suspects if k not in state.trying)
        return RegionState(
            accepted=MappingProxyType(dict(pushed.routes)),
            quarantined=state.quarantined,
            suspects=remaining,
            trying=_half(remaining),
        )
    candidates = _candidates(state.accepted, pushed, verdict.changed)
    if len(candidates) == 1:
        key = candidates[0]
        quarantined[key] = Quarantine(
            fingerprints.get(key, ""), verdict.type_url, verdict.version, verdict.message
        )
        return RegionState(
            accepted=state.accepted,
            quarantined=MappingProxyType(quarantined),
            blame=frozenset({key}),
        )
    return RegionState(
        accepted=state.accepted,
        quarantined=state.quarantined,
        suspects=candidates,
        trying=_half(candidates),
        blame=frozenset(candidates) if candidates else None,
    )


def compose(state: RegionState, routes: Sequence[DeploymentRoute]) -> tuple[DeploymentRoute, ...]:
    """The routes to push: quarantined ones left out; while bisecting, every changed route
    that is not being tried stays at its accepted form (or out, without one)."""
    out = []
    for route in routes:
        key = route_key(route)
        if key in state.quarantined:
            continue
        held = state.accepted.get(key)
        if state.suspects and key not in state.trying and held != route:
            if held is not None:
                out.append(held)
            continue
        out.append(route)
    return tuple(out)


def _candidates(
    accepted: Mapping[RouteKey, DeploymentRoute], pushed: Pushed, changed: frozenset[str]
) -> tuple[RouteKey, ...]:
    """Deployments that may have broken `pushed`: changed since `accepted`, and owning a
    changed resource of the rejected type when every changed resource has an owner."""
    candidates = tuple(
        key for key, route in sorted(pushed.routes.items()) if accepted.get(key) != route
    )
    owners = {pushed.owners.get(name) for name in changed}
    if owners and None not in owners:
        narrowed = tuple(key for key in candidates if key in owners)
        if narrowed:
            return narrowed
    return candidates


def _half(suspects: tuple[RouteKey, ...]) -> frozenset[RouteKey]:
    return frozenset(suspects[: (len(suspects) + 1) // 2])


def _trying(suspects: tuple[RouteKey, ...], trying: frozenset[RouteKey]) -> frozenset[RouteKey]:
    """The suspects still being tried, or the next half when none of them is left."""
    still = trying.intersection(suspects)
    return still if still else _half(suspects)
