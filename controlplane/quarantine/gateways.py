"""The I/O shell around `decide`: gives each region's Envoy its config, minus what it rejected.

Per region it remembers the configs it pushed and Envoy has not answered yet (routes, resource
owners, snapshot versions), reads Envoy's verdict on them from the xDS cache, lets `decide`
update the region's state, runs the offline checks `decide` asks for in a worker thread, keeps
each region's accepted baseline and quarantines in the store, and pushes `compose`'s routes.
The xDS layer stays ignorant of deployments: it only reports which version of which type was
rejected and which resource names the update changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from types import MappingProxyType

from controlplane.ir.codec import route_from_json, route_to_json
from controlplane.ir.model import Credentials, DeploymentRoute, GatewayIR
from controlplane.quarantine.decide import (
    PENDING,
    Check,
    Outcome,
    Pushed,
    Quarantine,
    RegionState,
    checked,
    compose,
    decide,
    route_key,
)
from controlplane.quarantine.offline import rejects_alone
from controlplane.quarantine.verdict import verdict_of
from controlplane.store import Store
from controlplane.store.quarantines import RegionRecord, load_regions, save_region
from controlplane.translate.translator import GatewayTranslator
from controlplane.xds.cache import SnapshotCache
from meshline.keys import DeploymentKey

log = logging.getLogger(__name__)

# Pushes kept per region while their answers are on their way (the oldest ones are given up:
# a config overtaken by a newer one may never be sent at all).
PUSHES_KEPT = 32

# Envoy's complaint about a gateway's resources with only this deployment's (None: none); ''.
Validator = Callable[[GatewayIR, DeploymentRoute | None], str]


@dataclass(frozen=True)
class _Push:
    config: Pushed
    versions: Mapping[str, str]  # type URL -> the node's snapshot version right after the push


@dataclass
class _Running:
    check: Check
    future: Future[dict[DeploymentKey, str]]


class GatewayConfigs:
    """Each region's quarantine state and unanswered pushes.

    `store` keeps each region's accepted baseline and quarantines (shared by every replica);
    `validate` checks a suspect offline (default: the real `envoy --mode validate`); `wake` is
    called, from the checking thread, when a check is done (the reconciler's thread-safe
    trigger), so the next `configure` applies it.
    """

    def __init__(
        self,
        cache: SnapshotCache,
        store: Store | None = None,
        *,
        validate: Validator = rejects_alone,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._cache = cache
        self._store = store
        self._validate = validate
        self._wake = wake
        self._states: dict[str, RegionState] = {}
        self._pushes: dict[str, list[_Push]] = {}
        self._running: dict[str, _Running] = {}
        # Each region's translator remembers every deployment's resources: a change remakes
        # only the deployments it touched (10,000 deployments: one translated, not all).
        self._translators: dict[str, GatewayTranslator] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quarantine")
        # Each region's accepted forms as last encoded for the store: an ACK of an endpoints
        # change re-encodes only the routes that changed, not the whole region.
        self._encoded: dict[str, dict[DeploymentKey, tuple[DeploymentRoute, str]]] = {}
        # Each region's routes of the newest config its Envoy ACKed whole (this process only:
        # after a restart nothing is confirmed until Envoy ACKs again).
        self._confirmed: dict[str, Mapping[DeploymentKey, DeploymentRoute]] = {}
        self._confirmed_credentials: dict[str, Credentials] = {}
        if store is not None:
            for region, record in load_regions(store).items():
                self._states[region] = RegionState(
                    accepted=MappingProxyType(_forms(region, record.forms)),
                    baseline=record.accepted,
                    quarantined=record.quarantined,
                )

    def close(self) -> None:
        """Stop the checking thread (a check in progress is abandoned)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def configure(self, gateway: GatewayIR, fingerprints: Mapping[DeploymentKey, str]) -> None:
        """Decide on Envoy's answers to the last pushes, then push the region's config.

        `fingerprints`: every deployment's (see `fingerprint.py`). Raises what translation or
        the cache raise; the region then keeps its last config.
        """
        region = gateway.region
        before = self._states.get(region, RegionState())
        state = self._decide(region, before, fingerprints)
        state = self._check(region, state, gateway)
        self._states[region] = state
        self._report(region, before, state)
        routes = compose(state, gateway.routes)
        translator = self._translators.setdefault(region, GatewayTranslator())
        resources = translator.translate(replace(gateway, routes=routes))
        self._cache.set_resources(region, resources.for_cache())
        snapshot = self._cache.snapshot(region)
        versions = {t: s.version for t, s in snapshot.types.items()} if snapshot else {}
        push = _Push(
            Pushed(
                MappingProxyType({route_key(r): r for r in routes}),
                resources.owners,
                gateway.credentials,
            ),
            MappingProxyType(versions),
        )
        pushes = self._pushes.setdefault(region, [])
        if not pushes or pushes[-1] != push:
            pushes.append(push)
        del pushes[:-PUSHES_KEPT]

    def quarantined(self) -> dict[DeploymentKey, dict[str, Quarantine]]:
        """Deployment -> region -> why that region's config leaves it out."""
        out: dict[DeploymentKey, dict[str, Quarantine]] = {}
        for region, state in sorted(self._states.items()):
            for key, q in state.quarantined.items():
                out.setdefault(key, {})[region] = q
        return out

    def confirmed(self) -> dict[str, Mapping[DeploymentKey, DeploymentRoute]]:
        """Region → the typed routes behind the newest config its Envoy ACKed whole (every
        type): what status and drain decisions read, instead of Envoy's protos."""
        return dict(self._confirmed)

    def confirmed_credentials(self) -> dict[str, Credentials]:
        """Region → the credentials of the newest config its Envoy ACKed whole: which API key
        secrets that region's gateway takes."""
        return dict(self._confirmed_credentials)

    def blame(self) -> dict[str, frozenset[DeploymentKey]]:
        """Region -> the deployments a NACK standing there concerns (absent: all of them)."""
        return {r: s.blame for r, s in self._states.items() if s.blame is not None}

    def _decide(
        self, region: str, state: RegionState, fingerprints: Mapping[DeploymentKey, str]
    ) -> RegionState:
        """Apply Envoy's answer to the newest push it answered; older pushes are done with."""
        pushes = self._pushes.get(region, [])
        status = self._cache.node_status(region)
        for push in reversed(pushes):
            if verdict_of(status, push.versions).outcome is Outcome.ACKED:
                self._confirmed[region] = push.config.routes
                self._confirmed_credentials[region] = push.config.credentials
                break
        for index in range(len(pushes) - 1, -1, -1):
            verdict = verdict_of(status, pushes[index].versions)
            if verdict.outcome is not Outcome.PENDING:
                push = pushes[index]
                del pushes[: index + 1]
                return decide(state, push.config, verdict, fingerprints)
        return decide(state, None, PENDING, fingerprints)

    def _check(self, region: str, state: RegionState, gateway: GatewayIR) -> RegionState:
        """Apply a finished offline check; start the one `decide` asked for."""
        running = self._running.get(region)
        if running is not None and running.check is not state.check:
            running.future.cancel()  # replaced by a newer rejection, or an ACK
            del self._running[region]
            running = None
        if running is not None and running.future.done():
            del self._running[region]
            try:
                refused = running.future.result()
            except Exception:
                log.exception("region %s: the offline check failed; nobody is blamed", region)
                refused = {}
            if not refused:
                log.warning(
                    "region %s: Envoy takes each suspect's resources alone, so no deployment "
                    "is blamed for the rejection; the region keeps what its Envoy has until "
                    "the cause changes",
                    region,
                )
            return checked(state, running.check, refused)
        if state.check is not None and running is None:
            check = state.check
            future = self._executor.submit(self._run_check, gateway, check)
            future.add_done_callback(lambda _f: self._wake())
            self._running[region] = _Running(check, future)
            log.info(
                "region %s: Envoy rejected %s version %s and its changes name no single "
                "deployment; validating %d suspect(s) offline",
                region,
                check.verdict.type_url,
                check.verdict.version,
                len(check.suspects),
            )
        return state

    def _run_check(self, gateway: GatewayIR, check: Check) -> dict[DeploymentKey, str]:
        """(Worker thread.) Envoy's complaint about each suspect's resources alone; none when
        it refuses the gateway's own resources already (that is no deployment's fault)."""
        out: dict[DeploymentKey, str] = {}
        if self._validate(gateway, None):
            return out
        for key, route in sorted(check.suspects.items()):
            complaint = self._validate(gateway, route)
            if complaint:
                out[key] = complaint
        return out

    def _report(self, region: str, before: RegionState, after: RegionState) -> None:
        """Log what changed, and keep the baseline and quarantines in the store when they did."""
        for key, q in after.quarantined.items():
            if key not in before.quarantined:
                log.warning(
                    "region %s: Envoy rejected %s version %s because of deployment %s "
                    "(environment %s); it is left out of the region's config until it "
                    "changes: %s",
                    region,
                    q.type_url,
                    q.version,
                    key.name,
                    key.environment,
                    q.message,
                )
        for environment, name in before.quarantined.keys() - after.quarantined.keys():
            log.info("region %s: deployment %s (%s) changed or went", region, name, environment)
        if self._store is None:
            return
        if (before.accepted, before.baseline, before.quarantined) == (
            after.accepted,
            after.baseline,
            after.quarantined,
        ):
            return
        try:
            forms = self._encode(region, after)
            save_region(self._store, region, RegionRecord(after.baseline, forms, after.quarantined))
        except Exception:
            log.exception("cannot keep region %s's quarantines in the store", region)

    def _encode(self, region: str, state: RegionState) -> dict[DeploymentKey, str]:
        """The baseline's accepted forms as JSON text, from the cache where a route is as it
        was last encoded."""
        cached = self._encoded.get(region, {})
        fresh: dict[DeploymentKey, tuple[DeploymentRoute, str]] = {}
        for key, route in state.accepted.items():
            if key not in state.baseline:
                continue
            hit = cached.get(key)
            fresh[key] = (
                hit if hit is not None and hit[0] == route else (route, route_to_json(route))
            )
        self._encoded[region] = fresh
        return {key: text for key, (_, text) in fresh.items()}


def _forms(
    region: str, stored: Mapping[DeploymentKey, str]
) -> dict[DeploymentKey, DeploymentRoute]:
    """The accepted forms kept in the store; one this IR cannot read is dropped (that
    deployment then counts as changed, and is left out if quarantined)."""
    out = {}
    for key, text in stored.items():
        try:
            out[key] = route_from_json(text)
        except ValueError as exc:
            log.warning("region %s: ignoring the stored form of %s: %s", region, key, exc)
    return out
