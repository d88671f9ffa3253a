"""The I/O shell that drives store → policy → ir → translate → xds, and desired state to agents.

Any change (a commit in the store, an agent report, an Envoy ACK) wakes the reconciler; it
waits a short debounce so a burst becomes one rebuild, then recomputes everything from its
inputs. The decisions are pure functions elsewhere (`plan`, `agents`, `wakes`, the autoscaler,
rollouts, moves, offload, quarantine); this module gathers their inputs, calls them in order
and sends what they return. A failure in one region never stops the others from being
configured.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from controlplane.activator import Activator, HoldRequest, HoldTarget
from controlplane.agents.registry import AgentRegistry, AgentSession
from controlplane.autoscale import Autoscaler, LoadSignal, load_signals
from controlplane.autoscale.admission import RegionBudget
from controlplane.ir.build import ColdRegions, GatewayAddress, RouteMemo, build_network
from controlplane.ir.index import ClusterIndex
from controlplane.ir.model import Endpoint, PublicKey
from controlplane.moves import MoveTracker
from controlplane.offload import COOLDOWN_S as OFFLOAD_COOLDOWN_S
from controlplane.offload import OffloadController
from controlplane.pki.ca import create_ca
from controlplane.quarantine import GatewayConfigs
from controlplane.reconcile.agents import desired_state, releasable
from controlplane.reconcile.capacity import (
    new_measurements,
    region_memory,
    track_footprints,
)
from controlplane.reconcile.identities import GatewayIdentities
from controlplane.reconcile.plan import NetworkPlan
from controlplane.reconcile.plan_memo import PlanMemo
from controlplane.reconcile.state import HoldSite, NetworkState
from controlplane.reconcile.wakes import (
    hold_target,
    hold_targets,
    ready,
    scale_inputs,
    wake_problem,
)
from controlplane.rollout import RolloutController, RolloutView
from controlplane.store import Store
from controlplane.store.footprints import load_footprints, record_footprints
from controlplane.store.keys import KeyCredential, active_credentials
from controlplane.store.quarantines import load_regions
from controlplane.xds.cache import SnapshotCache
from meshline.keys import DeploymentKey, PlacedTrackKey, TrackKey
from meshline.times import rfc3339
from meshline.v1 import agent_pb2

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.02


class Reconciler:
    def __init__(
        self,
        store: Store,
        registry: AgentRegistry,
        cache: SnapshotCache,
        autoscaler: Autoscaler | None = None,
        rollouts: RolloutController | None = None,
        identities: GatewayIdentities | None = None,
        peer_plaintext: bool = False,
    ) -> None:
        self.store = store
        # Each region's gateway certificate for the peer path (mTLS between gateways); signed
        # by a process-local CA when none is given (tests).
        self.identities = identities or GatewayIdentities(create_ca(datetime.now(UTC)))
        # The benchmark-only switch: the peer path in plain text, no certificates.
        self.peer_plaintext = peer_plaintext
        # The API key secrets that work now; the next time one stops (rotation grace, expiry).
        self._credentials: tuple[KeyCredential, ...] = ()
        self.rollouts = rollouts
        self.registry = registry
        self.cache = cache
        # Each region's config, minus deployments its Envoy rejected (kept in the store); its
        # offline checks end in a worker thread, which wakes the loop through call_soon_threadsafe.
        self._loop: asyncio.AbstractEventLoop | None = None
        self.configs = GatewayConfigs(cache, store, wake=self._trigger_threadsafe)
        self.state = NetworkState()
        # Every deployment's route per gateway from the last rebuild: unchanged ones are kept.
        self._routes = RouteMemo()
        # The store's snapshot and the plan made of it, reused until the store changes.
        self._memo = PlanMemo()
        self.offload = OffloadController()
        self.moves = MoveTracker()
        self.autoscaler = autoscaler or Autoscaler()
        # Set once the activator listens (controlplane.main): cold regions get it as last tier.
        self.activator: Activator | None = None
        self.activator_endpoint: Endpoint | None = None
        self._offloading = False
        # Told each rebuild's duration in seconds (the control plane's metrics page).
        self.rebuild_listeners: list[Callable[[float], None]] = []
        self._wake = asyncio.Event()
        # Told what woke each pass ("store": a committed change, "agent": a report or a
        # session, "envoy": an ACK, NACK or stream, "check": an offline config check ended,
        # "timer": an autoscaler, rollout or certificate deadline, "start").
        self.trigger_listeners: list[Callable[[str], None]] = []
        store.add_listener(lambda _event: self.trigger("store"))
        registry.add_listener(lambda _region: self.trigger("agent"))
        cache.add_listener(lambda _node: self.trigger("envoy"))

    def trigger(self, source: str = "start") -> None:
        for listener in self.trigger_listeners:
            listener(source)
        self._wake.set()

    def _trigger_threadsafe(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.trigger, "check")

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            # While a region offloads, wake up on our own so it can take its traffic back; the
            # autoscaler says when its windows or idle timers next need a look.
            timeouts = [OFFLOAD_COOLDOWN_S] if self._offloading else []
            for check in (
                self.autoscaler.next_check_s(),
                self.rollouts.next_check_s() if self.rollouts is not None else None,
                self.moves.next_check_s(),
                self._next_credential_change_s(),
                # Peer certificates (none held with --peer-plaintext) and edge certificates.
                self.identities.next_renewal_s(_now()),
            ):
                if check is not None:
                    timeouts.append(check)
            timeout = min(timeouts) if timeouts else None
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                for count in self.trigger_listeners:
                    count("timer")
            await asyncio.sleep(DEBOUNCE_S)
            self._wake.clear()
            started = time.perf_counter()
            try:
                self.rebuild()
            except Exception:
                log.exception("rebuild failed; keeping the last good config")
            for observe in self.rebuild_listeners:
                observe(time.perf_counter() - started)

    def _next_credential_change_s(self) -> float | None:
        """Seconds until a working secret stops (its gateways must stop taking it then)."""
        now = time.time()
        # Ends already past were applied by the rebuild that read them (or that rebuild failed
        # and the next change retries): never a busy loop.
        ends = [
            c.valid_until - now
            for c in self._credentials
            if c.valid_until is not None and c.valid_until > now
        ]
        return min(ends) if ends else None

    # -- one pass ------------------------------------------------------------------------

    def rebuild(self) -> None:
        snapshot = self._memo.snapshot(self.store)
        # A region is configured only once its agent has reported: a restarted control plane
        # must not push a config without endpoints over the one Envoy is serving.
        sessions = {s.region: s for s in self.registry.sessions() if s.report is not None}
        reports = {r: s.report for r, s in sessions.items() if s.report is not None}
        # Reports describe configs that earlier IRs named: read them with the last IR's names.
        known = self.state.clusters
        views: dict[DeploymentKey, RolloutView] = {}
        if self.rollouts is not None:
            views = self.rollouts.update(
                snapshot.deployments, self.state.placements, reports, known
            )
        derived = self._memo.derive(
            snapshot, {k: v.tracks for k, v in views.items() if v.tracks is not None}
        )
        plan = derived.plan()
        plan.state.rollouts = views
        # After a restart Envoy still runs the previous process's config: name the planned
        # tracks' clusters too, so the first look at a report reads all of it.
        known = known.merged(derived.planned_clusters)
        # The autoscaler's last decisions: a placed region at zero on purpose is not waited for.
        plan.state.moves = self.moves.update(plan.resolved, reports, known, self.state.scales)
        workers = {r: list(report.workers) for r, report in reports.items()}
        offload = self.offload.update(plan.resolved, workers)
        self._offloading = bool(offload)
        signals = _load_signals(plan, reports, known)
        plan.state.held = self.activator.held() if self.activator is not None else {}
        configured = derived.configured
        versions = derived.versions
        measured = load_footprints(self.store)
        record_footprints(self.store, new_measurements(reports, versions, measured, _rfc3339()))
        footprints = track_footprints(versions, measured, derived.declared, packed=derived.packed)
        plan.state.memory = {
            name: memory
            for name, region in plan.regions.items()
            if (memory := region_memory(region.spec, reports.get(name), footprints)) is not None
        }
        budgets = {
            name: plan.state.memory[name].budget(r.spec.max_replicas)
            if name in plan.state.memory
            else RegionBudget(r.spec.max_replicas)
            for name, r in plan.regions.items()
        }
        plan.state.scales = self.autoscaler.update(
            scale_inputs(plan, configured, footprints), signals, plan.state.held, budgets
        )
        cold = frozenset(k for k, scale in plan.state.scales.items() if scale.cold)
        self._credentials = active_credentials(self.store, time.time())
        network = build_network(
            plan.resolved,
            plan.regions,
            {
                r: GatewayAddress.parse(s.hello.gateway_address, s.hello.peer_address)
                for r, s in sessions.items()
            },
            workers,
            offload,
            ColdRegions(cold, self.activator_endpoint),
            {k: move.keep for k, move in plan.state.moves.items()},
            keys=[PublicKey(c.key_id, c.public_key) for c in self._credentials],
            tls={} if self.peer_plaintext else self.identities.tls(sessions, _now()),
            # Every region known, not only those whose agent reported since this process
            # started: the clusters' TLS sockets (one per peer) stay as they are meanwhile.
            known_regions={*plan.regions, *sessions},
            peer_plaintext=self.peer_plaintext,
            edge=self.identities.edge_tls(
                {r: s.hello.edge_tls for r, s in sessions.items()}, _now()
            ),
            memo=self._routes,
        )
        plan.state.clusters = ClusterIndex.of(network)
        plan.state.holds = hold_targets(network, plan)
        for gateway in network.gateways:
            for route in gateway.routes:
                plan.state.routes.setdefault(route.key, {})[gateway.region] = route
        self.state = plan.state
        for gateway in network.gateways:
            try:
                self.configs.configure(gateway, configured)
            except Exception:
                log.exception(
                    "cannot configure region %s; it keeps its last config", gateway.region
                )
        plan.state.confirmed = self.configs.confirmed()
        # What every region's Envoy rejected, as the store holds it (any replica may have
        # configured a region): deployment -> region -> quarantine.
        for region, record in load_regions(self.store).items():
            for key, quarantine in record.quarantined.items():
                plan.state.quarantined.setdefault(key, {})[region] = quarantine
        plan.state.nack_blame = self.configs.blame()
        connected = {s.region for s in self.registry.sessions()}
        for region, session in sessions.items():
            try:
                self._talk_to_agent(region, session, plan, set(plan.regions) | connected)
            except Exception:
                log.exception("cannot update the agent of region %s", region)
        if self.activator is not None:
            clusters = plan.state.clusters
            self.activator.update(
                lambda gateway, key: ready(gateway, key, signals, reports, clusters),
                {
                    k: wake_problem(scale, signals.get(k, LoadSignal()))
                    for k, scale in plan.state.scales.items()
                },
            )

    def hold_target(self, request: HoldRequest) -> HoldTarget | str | None:
        """What a request the activator got waits for (the activator's `resolve`)."""
        site = HoldSite(request.gateway, request.environment, request.deployment, request.version)
        return hold_target(self.state.holds, self.state.resolved.keys(), site)

    def _talk_to_agent(
        self, region: str, session: AgentSession, plan: NetworkPlan, regions: set[str]
    ) -> None:
        desired = desired_state(region, plan, session.last_desired, session.report, regions)
        if desired != session.last_desired:
            session.last_desired = desired
            session.send(agent_pb2.ConnectResponse(desired=desired))
        released = releasable(session.report, plan.state.confirmed.get(region))
        if released:  # re-sent on every pass until the agent has stopped them
            session.send(
                agent_pb2.ConnectResponse(released=agent_pb2.ReleasedWorkers(worker_ids=released))
            )


def _now() -> datetime:
    return datetime.now(UTC)


def _rfc3339() -> str:
    return rfc3339(_now(), "seconds")


def _load_signals(
    plan: NetworkPlan, reports: dict[str, agent_pb2.AgentReport], clusters: ClusterIndex
) -> dict[PlacedTrackKey, LoadSignal]:
    """Each region's load on each track it runs, from its agent's last report."""
    per_region: dict[str, list[TrackKey]] = {}
    for resolved in plan.resolved:
        for region in resolved.placement.regions:
            for track in resolved.tracks:
                per_region.setdefault(region, []).append(
                    TrackKey(resolved.environment, resolved.name, track.name)
                )
    out: dict[PlacedTrackKey, LoadSignal] = {}
    for region, keys in per_region.items():
        for key, signal in load_signals(reports.get(region), keys, clusters).items():
            out[PlacedTrackKey(*key, region)] = signal
    return out
