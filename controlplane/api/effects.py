"""What an apply changes for the deployments already stored: placement and effective routing.

An environment policy, a region's capacity or a new deployment that takes room can move or
re-route deployments the request never names; apply and plan list them so nothing moves
silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, fields, is_dataclass

from controlplane.policy import ResolvedDeployment
from controlplane.policy.settings import Track
from meshline.keys import DeploymentKey


@dataclass(frozen=True)
class DeploymentEffect:
    """One stored deployment whose placement or effective routing the change alters."""

    environment: str
    name: str
    placement_before: tuple[str, ...]
    placement_after: tuple[str, ...]
    changed: tuple[str, ...]  # effective settings that change besides placement, e.g. "failover"
    details: tuple[str, ...] = ()  # each changed value, e.g. "failover.enabled: true → false"


def _settings(resolved: ResolvedDeployment) -> dict[str, object]:
    """The effective settings a gateway's routing is built from, by the name users know."""
    return {
        "routing": resolved.routing,
        "failover": resolved.failover,
        "offload": resolved.offload,
        "traffic": resolved.tracks,
    }


def _flavors_changed(old: ResolvedDeployment, new: ResolvedDeployment) -> bool:
    """A different flavor in a region it keeps (a move already tells about the others)."""
    kept = set(old.placement.regions) & set(new.placement.regions)
    return {r: old.placement.flavor(r) for r in kept} != {r: new.placement.flavor(r) for r in kept}


def deployment_effects(
    before: Mapping[DeploymentKey, ResolvedDeployment],
    after: Mapping[DeploymentKey, ResolvedDeployment],
    requested: Set[DeploymentKey] = frozenset(),
) -> list[DeploymentEffect]:
    """Every deployment resolved both before and after whose placement or routing differs.

    Deployments created or deleted by the change are the request's own results, not effects;
    for those the request names (`requested`) only a move counts: their settings are what the
    user just wrote.
    """
    effects = []
    for key in sorted(before.keys() & after.keys()):
        old, new = before[key], after[key]
        changed: tuple[str, ...] = ()
        if key not in requested:
            old_settings, new_settings = _settings(old), _settings(new)
            changed = tuple(n for n in old_settings if old_settings[n] != new_settings[n])
            changed += ("flavors",) if _flavors_changed(old, new) else ()
        if old.placement.regions == new.placement.regions and not changed:
            continue
        details: list[str] = []
        old_settings, new_settings = _settings(old), _settings(new)
        for name in changed:
            if name == "flavors":
                kept = sorted(set(old.placement.regions) & set(new.placement.regions))
                details += [
                    f"flavors.{r}: {old.placement.flavor(r) or 'any'} → "
                    f"{new.placement.flavor(r) or 'any'}"
                    for r in kept
                    if old.placement.flavor(r) != new.placement.flavor(r)
                ]
            else:
                details += _differences(name, old_settings[name], new_settings[name])
        effects.append(
            DeploymentEffect(
                environment=key.environment,
                name=key.name,
                placement_before=old.placement.regions,
                placement_after=new.placement.regions,
                changed=changed,
                details=tuple(details),
            )
        )
    return effects


def _differences(path: str, old: object, new: object) -> list[str]:
    """`path: old → new` for every leaf value that differs (dataclasses are walked)."""
    if old == new:
        return []
    if is_dataclass(old) and type(old) is type(new):
        out: list[str] = []
        for f in fields(old):
            out += _differences(f"{path}.{f.name}", getattr(old, f.name), getattr(new, f.name))
        return out
    return [f"{path}: {_shown(old)} → {_shown(new)}"]


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        if all(isinstance(v, Track) for v in value):
            return ", ".join(_track(v) for v in value if isinstance(v, Track)) or "[]"
        return f"[{', '.join(_shown(v) for v in value)}]"
    if value == "":
        return "''"
    return str(value)


def _track(track: Track) -> str:
    shown = f"{track.version} {track.weight}%"
    return shown + (f" (mirror {track.mirror_percent:g}%)" if track.mirror_percent else "")
