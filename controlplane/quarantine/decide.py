"""Which deployments a region's config leaves out after its Envoy rejected an update.

A state-of-the-world NACK rejects a whole update of one type, and Envoy's text seldom names the
resource at fault (an out-of-range duration says only "Duration out-of-range"). One bad
deployment would then freeze the region: every later update carries it again and is rejected
too. So the control plane attributes each rejection to a deployment and quarantines it: that
region's config leaves it out until the deployment's configuration changes.

Attribution never tries configs on the live Envoy, which would take away what it serves. Only
deployments changed since the config Envoy last ACKed whole can be at fault (`accepted`: its
routes in this process; `baseline`: its fingerprints, kept in the store, after a restart). When
every resource the rejected update changed belongs to one of them, that one is quarantined.
Otherwise (a shared listener or route table changed, or several deployments did) each suspect's
own resources are checked offline by a validating Envoy (`Check`, see `offline.py`), and only
those it refuses are quarantined; a rejection none of them explains blames nobody, and the
region keeps what its Envoy has until the cause changes. Without any baseline (a region that
never ACKed a config of ours), every deployment is a suspect; nothing is taken away either.

Pure: `decide`, `checked` and `compose` are table-tested; `controlplane.quarantine.gateways`
does the I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from controlplane.ir.model import TIER_LOCAL, Backend, Credentials, DeploymentRoute
from controlplane.store.quarantines import Quarantine
from meshline.keys import DeploymentKey

__all__ = ["Quarantine"]


def route_key(route: DeploymentRoute) -> DeploymentKey:
    return DeploymentKey(route.environment, route.deployment)


class Outcome(enum.Enum):
    PENDING = "pending"  # not answered yet (or answered for an older config)
    ACKED = "acked"  # every type of the config is ACKed
    REJECTED = "rejected"  # Envoy NACKed one type of it


@dataclass(frozen=True)
class Verdict:
    """What the region's Envoy said about one config pushed to it."""

    outcome: Outcome
    type_url: str = ""
    version: str = ""
    message: str = ""
    changed: frozenset[str] = frozenset()  # names new or changed in the rejected update


PENDING = Verdict(Outcome.PENDING)
ACKED = Verdict(Outcome.ACKED)


@dataclass(frozen=True)
class Pushed:
    """A config pushed to a region: its routes, and the owner of each resource name."""

    routes: Mapping[DeploymentKey, DeploymentRoute]
    owners: Mapping[str, DeploymentKey] = field(default_factory=lambda: MappingProxyType({}))
    # The credentials the config verifies callers with (which API key secrets work).
    credentials: Credentials = field(default_factory=Credentials)


@dataclass(frozen=True)
class Check:
    """A rejection the changed resources do not pin on one deployment: each suspect's own
    resources (at the rejected form) are to be validated offline before anyone is blamed."""

    verdict: Verdict
    suspects: Mapping[DeploymentKey, DeploymentRoute]
    fingerprints: Mapping[DeploymentKey, str]  # the suspects' configuration when rejected


@dataclass(frozen=True)
class RegionState:
    """What one region's quarantine knows between rebuilds."""

    # The routes of the last config the region's Envoy ACKed whole (this process only).
    accepted: Mapping[DeploymentKey, DeploymentRoute] = field(
        default_factory=lambda: MappingProxyType({})
    )
    # The fingerprints of the deployments in that config (kept in the store across restarts).
    baseline: Mapping[DeploymentKey, str] = field(default_factory=lambda: MappingProxyType({}))
    quarantined: Mapping[DeploymentKey, Quarantine] = field(
        default_factory=lambda: MappingProxyType({})
    )
    check: Check | None = None  # an offline check asked for and not answered yet
    rejected: str = ""  # the rejected version already attributed (or being checked)
    # Whom a NACK that still stands concerns (None: every deployment of the region).
    blame: frozenset[DeploymentKey] | None = None


def decide(
    state: RegionState,
    pushed: Pushed | None,
    verdict: Verdict,
    fingerprints: Mapping[DeploymentKey, str],
) -> RegionState:
    """The next state, given Envoy's verdict on `pushed` and every deployment's fingerprint.

    A quarantine is lifted when its deployment's fingerprint changed (or it is gone).
    """
    quarantined = {
        key: q for key, q in state.quarantined.items() if fingerprints.get(key) == q.fingerprint
    }
    state = replace(state, quarantined=MappingProxyType(quarantined))
    if pushed is None or verdict.outcome is Outcome.PENDING:
        return state
    if verdict.outcome is Outcome.ACKED:
        # A quarantined deployment went at its accepted form: that form's fingerprint stays.
        baseline = {
            k: state.baseline[k] if k in quarantined else fingerprints[k]
            for k in sorted(pushed.routes)
            if k in fingerprints and (k not in quarantined or k in state.baseline)
        }
        return RegionState(
            accepted=MappingProxyType(dict(pushed.routes)),
            baseline=MappingProxyType(baseline),
            quarantined=state.quarantined,
        )
    if verdict.version == state.rejected:
        return state  # attributed already, or its check is on its way
    state = replace(state, check=None, rejected=verdict.version)
    candidates = _candidates(state, pushed, fingerprints)
    owners = {pushed.owners.get(name) for name in verdict.changed}
    if owners and None not in owners:
        narrowed = tuple(key for key in candidates if key in owners)
        if len(narrowed) == 1:
            # Everything the rejected update changed is a deployment's own, and of those only
            # this one differs from what Envoy accepted (a fresh stream counts every name as
            # changed; the unchanged deployments' resources were accepted as they are).
            key = narrowed[0]
            quarantined[key] = _quarantine(state, key, fingerprints.get(key, ""), verdict)
            return replace(state, quarantined=MappingProxyType(quarantined), blame=frozenset({key}))
        candidates = narrowed or candidates
    if not candidates:
        return replace(state, blame=None)
    check = Check(
        verdict,
        MappingProxyType({key: pushed.routes[key] for key in candidates}),
        MappingProxyType({key: fingerprints.get(key, "") for key in candidates}),
    )
    return replace(state, check=check, blame=None)


def checked(state: RegionState, check: Check, refused: Mapping[DeploymentKey, str]) -> RegionState:
    """The offline check's answer: `refused` maps each suspect Envoy refused alone to what it
    said. Only those are quarantined (with what the live Envoy said about the update); when
    none is, the rejection stays unexplained and concerns the whole region."""
    if state.check is not check:
        return state  # a newer rejection (or an ACK) replaced it
    quarantined = dict(state.quarantined)
    verdict = check.verdict
    for key in check.suspects:
        if refused.get(key):
            quarantined[key] = _quarantine(state, key, check.fingerprints[key], verdict)
    blamed = frozenset(key for key in check.suspects if refused.get(key))
    return replace(
        state,
        quarantined=MappingProxyType(quarantined),
        check=None,
        blame=blamed if blamed else None,
    )


def compose(state: RegionState, routes: Sequence[DeploymentRoute]) -> tuple[DeploymentRoute, ...]:
    """The routes to push: a quarantined deployment at the form Envoy last accepted, with its
    endpoints current (left out when Envoy never accepted one); the rest as they are."""
    out = []
    for route in routes:
        key = route_key(route)
        if key not in state.quarantined:
            out.append(route)
        elif key in state.accepted:
            out.append(held(state.accepted[key], route))
    return tuple(out)


def held(accepted: DeploymentRoute, current: DeploymentRoute) -> DeploymentRoute:
    """`accepted` with the hosts of `current`: each backend of a model version (and track)
    the current route still has takes its tiers and endpoints from there, so workers that
    come, go or drain are followed (EDS is its own type: Envoy's verdict on the routes and
    clusters does not depend on them). A version the current route no longer has keeps the
    hosts it had, and lists the current route's other workers of its track as draining: one
    of the new version may have reached Envoy with the rejected update's endpoints, and
    Envoy keeps a host that leaves EDS while it passes health checks."""
    now = {(b.track, b.version): b for b in current.backends}
    by_track = {b.track: b for b in current.backends}
    backends = []
    for b in accepted.backends:
        n = now.get((b.track, b.version))
        if n is not None:
            backends.append(
                replace(b, tiers=n.tiers, local_endpoints=n.local_endpoints, wakes=n.wakes)
            )
        else:
            backends.append(_strangers_draining(b, by_track.get(b.track)))
    return replace(accepted, backends=tuple(backends))


def _strangers_draining(kept: Backend, current: Backend | None) -> Backend:
    """`kept`, plus the local workers of `current` it does not list, as draining."""
    if current is None:
        return kept
    known = {e.worker_id for t in kept.tiers for e in t.endpoints}
    known.update(e.worker_id for e in kept.local_endpoints or ())
    strangers = tuple(
        replace(e, draining=True)
        for t in current.tiers
        if t.kind == TIER_LOCAL
        for e in t.endpoints
        if e.worker_id not in known
    )
    if not strangers:
        return kept
    tiers = tuple(
        replace(t, endpoints=t.endpoints + strangers) if t.kind == TIER_LOCAL else t
        for t in kept.tiers
    )
    local = kept.local_endpoints + strangers if kept.local_endpoints is not None else None
    return replace(kept, tiers=tiers, local_endpoints=local)


def kept_versions(route: DeploymentRoute) -> str:
    """The model version(s) a route serves, as status names the form a deployment is kept at."""
    return ", ".join(dict.fromkeys(b.version for b in route.backends))


def _quarantine(
    state: RegionState, key: DeploymentKey, fingerprint: str, verdict: Verdict
) -> Quarantine:
    accepted = state.accepted.get(key)
    kept = kept_versions(accepted) if accepted is not None else ""
    return Quarantine(fingerprint, verdict.type_url, verdict.version, verdict.message, kept)


def _candidates(
    state: RegionState, pushed: Pushed, fingerprints: Mapping[DeploymentKey, str]
) -> tuple[DeploymentKey, ...]:
    """Deployments that may have broken `pushed`: changed since the config Envoy last ACKed
    (by route when this process saw that ACK, else by fingerprint; new ones too)."""
    out = []
    for key, route in sorted(pushed.routes.items()):
        if key in state.accepted:
            changed = state.accepted[key] != route
        else:
            changed = key not in state.baseline or state.baseline[key] != fingerprints.get(key)
        if changed:
            out.append(key)
    return tuple(out)
