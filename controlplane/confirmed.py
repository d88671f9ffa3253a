"""What a region's Envoy confirmed, read from the typed IR behind the last config it ACKed whole.

Status and drain decisions ask these questions of `DeploymentRoute`s, never of Envoy protos:
a rename in translate cannot change an answer. Pure; table-tested.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from controlplane.ir.model import Credentials, DeploymentRoute
from meshline.keys import DeploymentKey

# region → deployment → the route of the config its Envoy last ACKed whole (this process).
Confirmed = Mapping[str, Mapping[DeploymentKey, DeploymentRoute]]


def serves(route: DeploymentRoute | None, tracks: Iterable[str]) -> bool:
    """The region routes every track to clusters of its own workers (a placed region)."""
    if route is None or route.deactivated:
        return False
    for track in tracks:
        backend = route.backend(track)
        if backend is None or backend.local_endpoints is None:
            return False
    return True


def forwards(route: DeploymentRoute | None, tracks: Iterable[str]) -> bool:
    """The region routes every track somewhere (a region outside the placement)."""
    if route is None or route.deactivated:
        return False
    return all(route.backend(track) is not None for track in tracks)


def refuses(route: DeploymentRoute | None) -> bool:
    """The region answers the deployment's requests with "deactivated"."""
    return route is not None and route.deactivated


def routable_workers(route: DeploymentRoute | None, track: str) -> frozenset[str]:
    """Ids of the region's own workers of `track` that Envoy may pick: listed healthy and not
    draining in the clusters of the region's own workers."""
    backend = route.backend(track) if route is not None else None
    if backend is None or backend.local_endpoints is None:
        return frozenset()
    return frozenset(e.worker_id for e in backend.local_endpoints if e.healthy and not e.draining)


def may_route(route: DeploymentRoute | None, worker_id: str) -> bool:
    """Could Envoy still send a new request to this worker: some cluster of the route lists it,
    not draining. A draining worker no confirmed route may pick can be stopped."""
    if route is None:
        return False
    for backend in route.backends:
        hosts = [e for tier in backend.tiers for e in tier.endpoints]
        hosts += backend.local_endpoints or ()
        if any(e.worker_id == worker_id and not e.draining for e in hosts):
            return True
    return False


def enforces(route: DeploymentRoute | None, desired: DeploymentRoute | None) -> bool:
    """The region checks callers as the deployment now says: the same access and rate rules
    as the route it is meant to have (no route meant there: nothing to enforce)."""
    if desired is None:
        return True
    return route is not None and (route.access, route.rate) == (desired.access, desired.rate)


def key_enforcement(
    current: str, gone: Iterable[str], credentials: Mapping[str, Credentials]
) -> tuple[list[str], list[str]]:
    """(regions that enforce an API key's state, regions that do not yet), from the credentials
    each region's Envoy ACKed: the key's `current` secret is taken there (none for a revoked or
    expired key) and none of the `gone` ones (revoked, or rotated out and past their grace)."""
    stopped = {k for k in gone if k}
    enforced: list[str] = []
    pending: list[str] = []
    for region, held in sorted(credentials.items()):
        taken = {k.key_id for k in held.keys}
        ok = (not current or current in taken) and not (taken & stopped)
        (enforced if ok else pending).append(region)
    return enforced, pending
