"""The I/O shell around `decide`: gives each region's Envoy its config, minus what it rejected.

Per region it remembers the config it pushed last (routes, resource owners, snapshot versions),
reads Envoy's verdict on it from the xDS cache, lets `decide` update the region's state, and
pushes `compose`'s routes. The xDS layer stays ignorant of deployments: it only reports which
version of which type was rejected and which resource names the update held.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

from controlplane.ir.model import GatewayIR
from controlplane.quarantine import file
from controlplane.quarantine.decide import (
    PENDING,
    Pushed,
    Quarantine,
    RegionState,
    RouteKey,
    compose,
    decide,
    route_key,
)
from controlplane.quarantine.verdict import verdict_of
from controlplane.translate import translate_gateway
from controlplane.xds.cache import SnapshotCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Push:
    config: Pushed
    versions: Mapping[str, str]  # type URL -> the node's snapshot version right after the push


class GatewayConfigs:
    """Each region's quarantine state and last push; `path` keeps quarantines across restarts."""

    def __init__(self, cache: SnapshotCache, path: Path | None = None) -> None:
        self._cache = cache
        self._path = path
        self._states: dict[str, RegionState] = {}
        self._pushed: dict[str, _Push] = {}
        if path is not None:
            for region, quarantined in file.load(path).items():
                self._states[region] = RegionState(quarantined=MappingProxyType(quarantined))

    def configure(self, gateway: GatewayIR, fingerprints: Mapping[RouteKey, str]) -> None:
        """Decide on Envoy's answer to the last push, then push the region's config.

        `fingerprints`: every deployment's (see `fingerprint.py`). Raises what translation or
        the cache raise; the region then keeps its last config.
        """
        region = gateway.region
        before = self._states.get(region, RegionState())
        last = self._pushed.get(region)
        verdict = (
            verdict_of(self._cache.node_status(region), last.versions)
            if last is not None
            else PENDING
        )
        state = decide(before, last.config if last else None, verdict, fingerprints)
        self._states[region] = state
        self._report(region, before, state)
        routes = compose(state, gateway.routes)
        resources = translate_gateway(replace(gateway, routes=routes))
        self._cache.set_resources(region, resources.by_type_url())
        snapshot = self._cache.snapshot(region)
        versions = {t: s.version for t, s in snapshot.types.items()} if snapshot else {}
        self._pushed[region] = _Push(
            Pushed(MappingProxyType({route_key(r): r for r in routes}), resources.owners),
            MappingProxyType(versions),
        )

    def quarantined(self) -> dict[RouteKey, dict[str, Quarantine]]:
        """Deployment -> region -> why that region's config leaves it out."""
        out: dict[RouteKey, dict[str, Quarantine]] = {}
        for region, state in sorted(self._states.items()):
            for key, q in state.quarantined.items():
                out.setdefault(key, {})[region] = q
        return out

    def blame(self) -> dict[str, frozenset[RouteKey]]:
        """Region -> the deployments a NACK standing there concerns (absent: all of them)."""
        return {r: s.blame for r, s in self._states.items() if s.blame is not None}

    def _report(self, region: str, before: RegionState, after: RegionState) -> None:
        """Log what changed, and keep the quarantines on disk when they did."""
        for key, q in after.quarantined.items():
            if key not in before.quarantined:
                log.warning(
                    "region %s: Envoy rejected %s version %s because of deployment %s "
                    "(environment %s); it is left out of the region's config until it "
                    "changes: %s",
                    region,
                    q.type_url,
                    q.version,
                    key[1],
                    key[0],
                    q.message,
                )
        for environment, name in before.quarantined.keys() - after.quarantined.keys():
            log.info("region %s: deployment %s (%s) changed or went", region, name, environment)
        if after.suspects and after.suspects != before.suspects:
            log.info(
                "region %s: Envoy rejected an update; trying %d of %d suspect deployment(s)",
                region,
                len(after.trying),
                len(after.suspects),
            )
        if self._path is not None and before.quarantined != after.quarantined:
            try:
                file.save(self._path, {r: s.quarantined for r, s in self._states.items()})
            except OSError:
                log.exception("cannot write %s; quarantines will not survive a restart", self._path)
