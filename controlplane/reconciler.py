"""Drive the flow store → policy → ir → translate → xds, and desired state to agents.

Any change (a commit in the store, an agent report, an Envoy ACK) wakes the
reconciler; it waits a short debounce so a burst becomes one rebuild, then
recomputes everything from its inputs. Each stage stays a pure function; a
failure in one region never stops the others from being configured.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from envoy.config.core.v3 import health_check_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from controlplane.activator import Activator, HoldRequest, HoldTarget, WakeProblem
from controlplane.agents.registry import AgentRegistry, AgentSession
from controlplane.autoscale import Autoscaler, LoadSignal, RegionScale, ScaleKey, load_signals
from controlplane.autoscale.autoscaler import ScaleInput
from controlplane.ir.build import (
    ACTIVATOR_ID,
    ColdRegions,
    GatewayAddress,
    build_network,
    gateway_hostname,
)
from controlplane.ir.model import DeploymentRoute, Endpoint, NetworkIR
from controlplane.moves import Move, MoveTracker
from controlplane.offload import COOLDOWN_S as OFFLOAD_COOLDOWN_S
from controlplane.offload import OffloadController
from controlplane.policy import ResolvedDeployment, resolve_network
from controlplane.policy.scaling import DEFAULT_COLD_START_TIMEOUT_S
from controlplane.policy.settings import Track
from controlplane.quarantine import GatewayConfigs, Quarantine
from controlplane.quarantine.fingerprint import fingerprints
from controlplane.registry.identity import serving_identity
from controlplane.rollout import RolloutController, RolloutView
from controlplane.store import Store, StoreSnapshot
from controlplane.store.quarantines import load_regions
from controlplane.translate.endpoints import host_health
from controlplane.translate.names import (
    backend_key,
    cluster_name_grpc,
    cluster_name_http,
    deployment_key_of_cluster,
)
from controlplane.xds import CLUSTER, ENDPOINT
from controlplane.xds.cache import SnapshotCache
from meshline.v1 import agent_pb2, resources_pb2

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.02
DeploymentKey = tuple[str, str]  # (environment, name)
WorkloadKey = tuple[str, str, str]  # (environment, name, track)


@dataclass
class NetworkState:
    """What the last rebuild decided; read by the status provider."""

    placements: dict[DeploymentKey, tuple[str, ...]] = field(default_factory=dict)
    placement_errors: dict[DeploymentKey, str] = field(default_factory=dict)
    # The metadata.generation of each deployment this rebuild was made from.
    generations: dict[DeploymentKey, int] = field(default_factory=dict)
    # The worker revision each track of a deployment should run (status counts only those).
    revisions: dict[DeploymentKey, dict[str, str]] = field(default_factory=dict)
    resolved: dict[DeploymentKey, ResolvedDeployment] = field(default_factory=dict)
    # What each gateway was last given for each deployment (for `get deployment -o yaml`).
    routes: dict[DeploymentKey, dict[str, DeploymentRoute]] = field(default_factory=dict)
    # The autoscaler's decision for every (environment, deployment, track, region) placed.
    scales: dict[ScaleKey, RegionScale] = field(default_factory=dict)
    # Each deployment's rollout as the last rebuild saw it.
    rollouts: dict[DeploymentKey, RolloutView] = field(default_factory=dict)
    # Requests the activator held at the last rebuild, per ScaleKey.
    held: dict[ScaleKey, int] = field(default_factory=dict)
    # (gateway, environment, deployment, version) → what a request held there waits for.
    holds: dict[tuple[str, str, str, str], HoldTarget] = field(default_factory=dict)
    # Deployments a region's config leaves out because its Envoy rejected them: key → region.
    quarantined: dict[DeploymentKey, dict[str, Quarantine]] = field(default_factory=dict)
    # Region → the deployments a NACK still standing there concerns (absent: all of them).
    nack_blame: dict[str, frozenset[DeploymentKey]] = field(default_factory=dict)
    # Placement changes in progress: the old regions that keep serving, and what they wait for.
    moves: dict[DeploymentKey, Move] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkPlan:
    """Placement and workloads of every deployment, from one consistent store snapshot."""

    resolved: tuple[ResolvedDeployment, ...]
    workloads: dict[WorkloadKey, agent_pb2.Workload]
    regions: dict[str, resources_pb2.Region]
    state: NetworkState


def workload_revision(
    version: resources_pb2.ModelVersion, spec: resources_pb2.DeploymentSpec | None = None
) -> str:
    """Changes exactly when a running worker must be replaced: another model version or
    artifact, or other serving settings (batching, instances) that a worker takes at start."""
    parts: dict[str, object] = {
        "version": json_format.MessageToDict(
            serving_identity(version), preserving_proto_field_name=True
        )
    }
    if spec is not None:
        # What the worker is started with, normalised: settings equal to the defaults, or
        # written in another order, must not restart anything.
        batching = resources_pb2.BatchingSpec()
        batching.CopyFrom(spec.batching)
        batching.preferred_batch_sizes[:] = sorted(set(batching.preferred_batch_sizes))
        if batching != resources_pb2.BatchingSpec():
            parts["batching"] = json_format.MessageToDict(
                batching, preserving_proto_field_name=True
            )
        if spec.instances > 1:
            parts["instances"] = spec.instances
    # Without serving settings: the hash of the version alone, as before they existed.
    payload = json.dumps(parts if len(parts) > 1 else parts["version"], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def plan_network(
    snapshot: StoreSnapshot, tracks: Mapping[DeploymentKey, tuple[Track, ...]] | None = None
) -> NetworkPlan:
    """Resolve every deployment's policies and the workloads its regions run; `tracks`
    replaces the versions the policies give (a rollout in progress, or rolled back)."""
    environments = {e.metadata.name: e for e in snapshot.environments}
    models = {m.metadata.name: m for m in snapshot.models}
    specs = {(d.spec.environment, d.metadata.name): d.spec for d in snapshot.deployments}
    network = resolve_network(snapshot.deployments, environments, snapshot.regions)
    state = NetworkState(
        placement_errors=dict(network.errors),
        generations={
            (d.spec.environment, d.metadata.name): d.metadata.generation
            for d in snapshot.deployments
        },
    )
    workloads: dict[WorkloadKey, agent_pb2.Workload] = {}
    for key, resolved in sorted(network.deployments.items()):
        if tracks and key in tracks:
            resolved = replace(resolved, tracks=tracks[key])
        versions = {v.name: v for v in models[resolved.model].spec.versions}
        missing = [t.version for t in resolved.tracks if t.version not in versions]
        if missing:
            # E.g. the version a rollout serves was removed from the model: this deployment
            # fails with the reason, the rest of the network is still configured.
            state.placement_errors[key] = (
                f"model '{resolved.model}' has no version '{missing[0]}' any more, which this "
                "deployment still serves (re-add it, or set the deployment's version)"
            )
            continue
        state.placements[key] = resolved.placement.regions
        state.resolved[key] = resolved
        revisions = state.revisions.setdefault(key, {})
        spec = specs[key]
        for track in resolved.tracks:
            version = versions[track.version]
            revisions[track.name] = workload_revision(version, spec)
            workloads[(*key, track.name)] = agent_pb2.Workload(
                deployment=resolved.name,
                environment=resolved.environment,
                revision=revisions[track.name],
                runtime=version.runtime,
                model_path=version.artifact_path or version.path,
                artifact_sha256=version.sha256 if version.artifact_path else "",
                signature=version.signature,
                replicas=resolved.replicas,
                model_version=version.name,
                track=track.name,
                batching=spec.batching,
                instances=max(1, spec.instances),
                external=version.external if version.HasField("external") else None,
            )
    return NetworkPlan(
        tuple(state.resolved[k] for k in sorted(state.resolved)),
        workloads,
        {r.metadata.name: r for r in snapshot.regions},
        state,
    )


class Reconciler:
    def __init__(
        self,
        store: Store,
        registry: AgentRegistry,
        cache: SnapshotCache,
        autoscaler: Autoscaler | None = None,
        rollouts: RolloutController | None = None,
    ) -> None:
        self.store = store
        self.rollouts = rollouts
        self.registry = registry
        self.cache = cache
        # Each region's config, minus deployments its Envoy rejected (kept in the store); its
        # offline checks end in a worker thread, which wakes the loop through call_soon_threadsafe.
        self._loop: asyncio.AbstractEventLoop | None = None
        self.configs = GatewayConfigs(cache, store, wake=self._trigger_threadsafe)
        self.state = NetworkState()
        self.offload = OffloadController()
        self.moves = MoveTracker()
        self.autoscaler = autoscaler or Autoscaler()
        # Set once the activator listens (controlplane.main): cold regions get it as last tier.
        self.activator: Activator | None = None
        self.activator_endpoint: Endpoint | None = None
        self._offloading = False
        self._wake = asyncio.Event()
        store.add_listener(lambda _event: self.trigger())
        registry.add_listener(lambda _region: self.trigger())
        cache.add_listener(lambda _node: self.trigger())

    def trigger(self) -> None:
        self._wake.set()

    def _trigger_threadsafe(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.trigger)

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
            ):
                if check is not None:
                    timeouts.append(check)
            timeout = min(timeouts) if timeouts else None
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
            await asyncio.sleep(DEBOUNCE_S)
            self._wake.clear()
            try:
                self.rebuild()
            except Exception:
                log.exception("rebuild failed; keeping the last good config")

    # -- one pass ------------------------------------------------------------------------

    def rebuild(self) -> None:
        snapshot = self.store.snapshot()
        # A region is configured only once its agent has reported: a restarted control plane
        # must not push a config without endpoints over the one Envoy is serving.
        sessions = {s.region: s for s in self.registry.sessions() if s.report is not None}
        views: dict[DeploymentKey, RolloutView] = {}
        if self.rollouts is not None:
            reports = {r: s.report for r, s in sessions.items() if s.report is not None}
            views = self.rollouts.update(snapshot.deployments, self.state.placements, reports)
        plan = plan_network(
            snapshot, {k: v.tracks for k, v in views.items() if v.tracks is not None}
        )
        plan.state.rollouts = views
        # The autoscaler's last decisions: a placed region at zero on purpose is not waited for.
        plan.state.moves = self.moves.update(
            plan.resolved,
            {r: s.report for r, s in sessions.items() if s.report is not None},
            self.state.scales,
        )
        workers = {r: list(s.report.workers) for r, s in sessions.items() if s.report is not None}
        offload = self.offload.update(plan.resolved, workers)
        self._offloading = bool(offload)
        signals = self._load_signals(plan, sessions)
        plan.state.held = self.activator.held() if self.activator is not None else {}
        configured = fingerprints(snapshot.deployments, snapshot.environments)
        plan.state.scales = self.autoscaler.update(
            _scale_inputs(plan, configured),
            signals,
            plan.state.held,
            {name: r.spec.max_replicas for name, r in plan.regions.items()},
        )
        cold = frozenset(k for k, scale in plan.state.scales.items() if scale.cold)
        network = build_network(
            plan.resolved,
            plan.regions,
            {r: GatewayAddress.parse(s.hello.gateway_address) for r, s in sessions.items()},
            workers,
            offload,
            ColdRegions(cold, self.activator_endpoint),
            {k: move.keep for k, move in plan.state.moves.items()},
        )
        plan.state.holds = _hold_targets(network, plan)
        for gateway in network.gateways:
            for route in gateway.routes:
                plan.state.routes.setdefault((route.environment, route.deployment), {})[
                    gateway.region
                ] = route
        self.state = plan.state
        for gateway in network.gateways:
            try:
                self.configs.configure(gateway, configured)
            except Exception:
                log.exception(
                    "cannot configure region %s; it keeps its last config", gateway.region
                )
        # What every region's Envoy rejected, as the store holds it (any replica may have
        # configured a region): deployment -> region -> quarantine.
        for region, record in load_regions(self.store).items():
            for key, quarantine in record.quarantined.items():
                plan.state.quarantined.setdefault(key, {})[region] = quarantine
        plan.state.nack_blame = self.configs.blame()
        for region, session in sessions.items():
            try:
                self._talk_to_agent(region, session, plan)
            except Exception:
                log.exception("cannot update the agent of region %s", region)
        if self.activator is not None:
            self.activator.update(
                lambda gateway, key: _ready(gateway, key, signals, sessions),
                {
                    k: _wake_problem(scale, signals.get(k, LoadSignal()))
                    for k, scale in plan.state.scales.items()
                },
            )

    def hold_target(self, request: HoldRequest) -> HoldTarget | str | None:
        """What a request the activator got waits for (the activator's `resolve`)."""
        key = (request.gateway, request.environment, request.deployment, request.version)
        target = self.state.holds.get(key)
        if target is None and (request.environment, request.deployment) in self.state.resolved:
            return None  # no longer cold here: Envoy's replay finds a worker now
        if target is None:
            return (
                f"the activator got a request for deployment '{request.deployment}' "
                f"(environment '{request.environment}', version '{request.version}') from "
                f"gateway '{request.gateway}', which does not route it to any region"
            )
        return target

    def _load_signals(
        self, plan: NetworkPlan, sessions: dict[str, AgentSession]
    ) -> dict[ScaleKey, LoadSignal]:
        """Each region's load on each track it runs, from its agent's last report."""
        per_region: dict[str, list[tuple[str, str, str]]] = {}
        for resolved in plan.resolved:
            for region in resolved.placement.regions:
                for track in resolved.tracks:
                    per_region.setdefault(region, []).append(
                        (resolved.environment, resolved.name, track.name)
                    )
        out: dict[ScaleKey, LoadSignal] = {}
        for region, keys in per_region.items():
            session = sessions.get(region)
            for key, signal in load_signals(session.report if session else None, keys).items():
                out[(*key, region)] = signal
        return out

    def _talk_to_agent(self, region: str, session: AgentSession, plan: NetworkPlan) -> None:
        workloads = []
        for resolved in plan.resolved:
            move = plan.state.moves.get(resolved.key)
            if move is not None and region in move.keep:
                workloads += _kept_workloads(session, resolved, plan)
                continue
            if region not in resolved.placement.regions or resolved.deactivated:
                continue
            for track in resolved.tracks:
                workload = agent_pb2.Workload()
                workload.CopyFrom(plan.workloads[(*resolved.key, track.name)])
                workload.flavor = resolved.placement.flavor(region)
                scale = plan.state.scales.get(
                    (resolved.environment, resolved.name, track.name, region)
                )
                if scale is not None:
                    workload.replicas = scale.desired
                workloads.append(workload)
        for workload in workloads:
            base = backend_key(
                f"{workload.deployment}.{workload.environment}", workload.track, True
            )
            workload.local_clusters[:] = [cluster_name_grpc(base), cluster_name_http(base)]
        others = sorted(
            (set(plan.regions) | {s.region for s in self.registry.sessions()}) - {region}
        )
        desired = agent_pb2.DesiredState(
            workloads=workloads,
            remote_hostnames=[ACTIVATOR_ID, *(gateway_hostname(r) for r in others)],
        )
        if desired != session.last_desired:
            session.last_desired = desired
            session.send(agent_pb2.ConnectResponse(desired=desired))
        released = self._releasable(region, session.report)
        if released:  # re-sent on every pass until the agent has stopped them
            session.send(
                agent_pb2.ConnectResponse(released=agent_pb2.ReleasedWorkers(worker_ids=released))
            )

    def _releasable(self, region: str, report: agent_pb2.AgentReport | None) -> list[str]:
        """Draining workers that the region's Envoy confirmably no longer routes to.

        Only positive evidence counts: an ACK received by this control plane of a CDS and EDS
        in which no cluster lists the worker as routable. Right after a restart nothing has
        been ACKed yet, so nothing is released.
        """
        status = self.cache.node_status(region).types.get(CLUSTER)
        if report is None or status is None or not status.acked_version:
            return []
        clusters = self.cache.acked_resources(region, CLUSTER)
        endpoints = self.cache.acked_resources(region, ENDPOINT)
        released = []
        for worker in report.workers:
            if worker.state != agent_pb2.WORKER_STATE_DRAINING:
                continue
            key = f"{worker.deployment}.{worker.environment}"
            addresses = (worker.grpc_address, worker.http_address)
            routable = any(
                _may_route(endpoints.get(cluster), addresses)
                for cluster in clusters
                if deployment_key_of_cluster(cluster) == key
            )
            if not routable:
                released.append(worker.worker_id)
        return released


def _kept_workloads(
    session: AgentSession, resolved: ResolvedDeployment, plan: NetworkPlan
) -> list[agent_pb2.Workload]:
    """What a region that a move leaves keeps running while the new placement starts: what its
    agent was last told, unchanged; after a control-plane restart, the current workloads at
    the number of workers it runs."""
    last = session.last_desired.workloads if session.last_desired is not None else ()
    running = [
        w
        for w in (session.report.workers if session.report is not None else ())
        if (w.deployment, w.environment) == (resolved.name, resolved.environment)
        and w.state != agent_pb2.WORKER_STATE_DRAINING
    ]
    out = []
    for track in resolved.tracks:
        key = (resolved.name, resolved.environment, track.name)
        told = next((w for w in last if (w.deployment, w.environment, w.track) == key), None)
        count = sum(1 for w in running if w.track == track.name)
        if told is None and count:
            told = agent_pb2.Workload()
            told.CopyFrom(plan.workloads[(*resolved.key, track.name)])
            told.replicas = count
        if told is not None:
            out.append(told)
    return out


def _scale_inputs(plan: NetworkPlan, configured: Mapping[DeploymentKey, str]) -> list[ScaleInput]:
    """Every placed track; a failed wake is remembered for its revision and `configured`
    fingerprint (the deployment's and its environment's spec)."""
    return [
        ScaleInput(
            (resolved.environment, resolved.name, track.name, region),
            resolved.scaling,
            resolved.deactivated,
            plan.state.revisions[resolved.key][track.name],
            configured.get(resolved.key, ""),
        )
        for resolved in plan.resolved
        for track in resolved.tracks
        for region in resolved.placement.regions
    ]


def _wake_problem(scale: RegionScale, signal: LoadSignal) -> WakeProblem:
    if scale.failed is not None:
        return WakeProblem(scale.failed.describe(), user_must_act=True)
    return WakeProblem(scale.problem or signal.problem)


def _hold_targets(
    network: NetworkIR, plan: NetworkPlan
) -> dict[tuple[str, str, str, str], HoldTarget]:
    """For every backend with an activator tier: the (track, region) its held requests wait for."""
    timeouts = {r.key: r.scaling.cold_start_timeout_s for r in plan.resolved}
    out = {}
    for gateway in network.gateways:
        for route in gateway.routes:
            for backend in route.backends:
                if not backend.wakes:
                    continue
                key = (route.environment, route.deployment, backend.track, backend.wakes)
                out[(gateway.region, route.environment, route.deployment, backend.version)] = (
                    HoldTarget(
                        key,
                        timeouts.get(
                            (route.environment, route.deployment), DEFAULT_COLD_START_TIMEOUT_S
                        ),
                    )
                )
    return out


def _ready(
    gateway: str,
    key: ScaleKey,
    signals: dict[ScaleKey, LoadSignal],
    sessions: dict[str, AgentSession],
) -> bool:
    """May a request held for `gateway` be replayed now: its Envoy can reach a worker.

    The region that woke must be served by its own Envoy; another gateway must also route to
    a host of the track's clusters (its agent counts no activator among routable hosts), i.e.
    its health check of the woken region's gateway passed.
    """
    if not signals.get(key, LoadSignal()).serving:
        return False
    region = key[3]
    if gateway == region:
        return True
    session = sessions.get(gateway)
    if session is None or session.report is None:
        return False
    environment, deployment, track, _ = key
    base = backend_key(f"{deployment}.{environment}", track)
    routable = {c.cluster: c.routable_hosts for c in session.report.clusters}
    return all(
        routable.get(name, 0) > 0 for name in (cluster_name_grpc(base), cluster_name_http(base))
    )


def _may_route(assignment: Message | None, addresses: tuple[str, ...]) -> bool:
    """Could Envoy pick one of `addresses` under this ACKed assignment? Unknown counts as yes."""
    if assignment is None:
        return True
    hosts = host_health(assignment)
    return any(
        hosts.get(address) is not None and hosts[address] != health_check_pb2.DRAINING
        for address in addresses
    )
