"""Live status from what the data plane confirmed: Envoy's ACKs and the agents' reports.

A deployment is Ready in a region only when that region's Envoy ACKed a config that routes
to it (read from the typed IR behind its newest whole-ACKed config, `controlplane.confirmed`)
with a healthy endpoint its own health check passed (the agent's view of Envoy), or it is
deliberately scaled to zero. A NACK shows Envoy's text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from controlplane import confirmed
from controlplane.agents.registry import AgentRegistry, AgentSession
from controlplane.autoscale import ColdStartLedger, RegionScale, load_signals
from controlplane.autoscale.admission import Demand
from controlplane.autoscale.failures import FailedWake, crash_looping
from controlplane.explain import live_plan
from controlplane.explain_capacity import RegionRoom
from controlplane.ir import names
from controlplane.ir.model import DeploymentRoute
from controlplane.reconcile import NetworkState
from controlplane.xds import CLUSTER, ENDPOINT, EXTENSION_CONFIG, LISTENER, ROUTE, SECRET
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.status import NodeStatus
from meshline.certs import CertificateFacts, read_certificate_facts
from meshline.keys import DeploymentKey, PlacedTrackKey, TrackKey
from meshline.phases import ENDED_WITHOUT_TARGET, ROLLING, DeploymentPhase, RolloutPhase
from meshline.times import rfc3339
from meshline.v1 import agent_pb2, resources_pb2

CDS, EDS, ECDS, LDS, RDS, SDS = CLUSTER, ENDPOINT, EXTENSION_CONFIG, LISTENER, ROUTE, SECRET
TYPE_NAMES = {
    SDS: "secrets",
    CDS: "clusters",
    EDS: "endpoints",
    ECDS: "filter configs",
    LDS: "listeners",
    RDS: "routes",
}
# In a region's acked_versions: the gateway certificate its Envoy ACKed (serial, expiry).
GATEWAY_CERTIFICATE = "gateway certificate"


# How status words a rollout that ended without the new version.
_ENDED = {RolloutPhase.ROLLED_BACK: "rolled back", RolloutPhase.ABORTED: "aborted"}


@dataclass
class _Look:
    """What one answer reads, gathered once: a listing of 10,000 deployments asks the cache,
    the registry and the network state once per region, not once per deployment and region,
    and finds a deployment's scales, held requests and workers by its key. A look costs what
    its answer holds: held requests and reported workers are few (indexed whole), a
    deployment's scales are looked up by its placed tracks (a page of a listing never walks
    every track of the network)."""

    state: NetworkState
    sessions: list[AgentSession]  # by region
    held: dict[tuple[DeploymentKey, str], int]
    # (region, deployment) -> its workers that region's agent reports, any track or state
    workers: dict[tuple[str, DeploymentKey], list[agent_pb2.WorkerReport]]
    nodes: dict[str, NodeStatus] = field(default_factory=dict)
    nacks: dict[str, str] = field(default_factory=dict)
    routable: dict[str, Mapping[str, int]] = field(default_factory=dict)

    def session(self, region: str) -> AgentSession | None:
        return next((s for s in self.sessions if s.region == region), None)

    def routable_hosts(self, region: str) -> Mapping[str, int]:
        """Cluster -> hosts `region`'s Envoy routes to, from its agent's last report."""
        if region not in self.routable:
            session = self.session(region)
            report = session.report if session is not None else None
            self.routable[region] = (
                {c.cluster: c.routable_hosts for c in report.clusters} if report else {}
            )
        return self.routable[region]

    def workers_of(self, region: str, key: DeploymentKey) -> list[agent_pb2.WorkerReport]:
        return self.workers.get((region, key), [])

    def scales_of(self, key: DeploymentKey) -> list[RegionScale]:
        """The autoscaler's decision for each of the deployment's tracks in each region it is
        placed in (what it was asked about: `reconcile.wakes.scale_inputs`)."""
        resolved = self.state.resolved.get(key)
        if resolved is None:
            return []
        scales = self.state.scales
        out = []
        for region in self.state.placements.get(key, ()):
            for track in resolved.tracks:
                scale = scales.get(PlacedTrackKey(key.environment, key.name, track.name, region))
                if scale is not None:
                    out.append(scale)
        return out


class LiveStatus:
    """Implements controlplane.api.status.StatusProvider (and its batch form, ManyStatuses)."""

    def __init__(
        self,
        cache: SnapshotCache,
        registry: AgentRegistry,
        state: Callable[[], NetworkState],
        cold_starts: ColdStartLedger | None = None,
    ) -> None:
        self.cache = cache
        self.registry = registry
        self._state = state
        self._cold_starts = cold_starts or ColdStartLedger()

    def _look(self) -> _Look:
        state = self._state()
        sessions = sorted(self.registry.sessions(), key=lambda s: s.region)
        held: dict[tuple[DeploymentKey, str], int] = {}
        for site, n in state.held.items():
            where = (site.deployment_key, site.region)
            held[where] = held.get(where, 0) + n
        workers: dict[tuple[str, DeploymentKey], list[agent_pb2.WorkerReport]] = {}
        for session in sessions:
            for w in session.report.workers if session.report is not None else ():
                key = DeploymentKey(w.environment, w.deployment)
                workers.setdefault((session.region, key), []).append(w)
        return _Look(state, sessions, held, workers)

    def _node(self, look: _Look, region: str) -> NodeStatus:
        node = look.nodes.get(region)
        if node is None:
            node = look.nodes[region] = self.cache.node_status(region)
        return node

    def _nack(self, region: str, look: _Look | None = None) -> str:
        look = look or self._look()
        if region not in look.nacks:
            look.nacks[region] = self._nack_text(self._node(look, region))
        return look.nacks[region]

    @staticmethod
    def _nack_text(status: NodeStatus) -> str:
        for type_url, t in sorted(status.types.items()):
            if t.nack is not None:
                return (
                    f"Envoy rejected {TYPE_NAMES.get(type_url, type_url)} version "
                    f"{t.nack.version}: {t.nack.message}"
                )
        return ""

    def _nack_of(self, region: str, key: DeploymentKey, look: _Look) -> str:
        """The rejection by `region`'s Envoy that concerns this deployment: its quarantine
        there, or a NACK standing there that was not attributed to other deployments."""
        state = look.state
        quarantine = state.quarantined.get(key, {}).get(region)
        if quarantine is not None:
            kind = TYPE_NAMES.get(quarantine.type_url, quarantine.type_url)
            rejected = (
                f"Envoy rejected {kind} version {quarantine.version}: {quarantine.message.strip()}"
            )
            if quarantine.kept:  # the old form keeps serving there
                return (
                    f"kept at its last accepted form (version {quarantine.kept}); the new "
                    f"spec was rejected: {rejected}"
                )
            return (
                f"{rejected} (quarantined: left out of region {region}'s config until the "
                "deployment changes)"
            )
        blame = state.nack_blame.get(region)
        if blame is not None and key not in blame:
            return ""
        return self._nack(region, look)

    def deployment_status(self, dep: resources_pb2.Deployment) -> resources_pb2.DeploymentStatus:
        return self.deployment_statuses([dep])[0]

    def deployment_statuses(
        self, deps: Sequence[resources_pb2.Deployment]
    ) -> list[resources_pb2.DeploymentStatus]:
        """Each deployment's status, read from one look at the live state."""
        look = self._look()
        out = []
        for dep in deps:
            status = self._deployment_status(dep, look)
            key = DeploymentKey(dep.spec.environment, dep.metadata.name)
            status.observed_generation = look.state.generations.get(key, 0)
            out.append(status)
        return out

    def _deployment_status(
        self, dep: resources_pb2.Deployment, look: _Look
    ) -> resources_pb2.DeploymentStatus:
        state = look.state
        key = DeploymentKey(dep.spec.environment, dep.metadata.name)
        if key in state.placement_errors:
            return resources_pb2.DeploymentStatus(
                phase=DeploymentPhase.FAILED, message=state.placement_errors[key]
            )
        regions = state.placements.get(key)
        if regions is None:
            return resources_pb2.DeploymentStatus(
                phase=DeploymentPhase.PENDING, message="not reconciled yet"
            )
        out = resources_pb2.DeploymentStatus(placement=list(regions))
        if dep.spec.deactivated:
            return self._deactivated(dep, regions, out, look)
        verdicts = [
            self._region_of_deployment(dep, region, state.revisions.get(key, {}), out, look)
            for region in regions
        ]
        # A placement change in progress: the regions it leaves serve until the new ones do.
        move = state.moves.get(key)
        leaving = move.keep if move is not None else ()
        for region in leaving:
            self._region_of_deployment(dep, region, state.revisions.get(key, {}), out, look)
            row = out.regions[-1]
            row.leaving, row.desired_replicas = True, row.current_replicas
        resolved = state.resolved.get(key)
        if resolved is not None:
            out.plan.CopyFrom(live_plan(resolved, state.routes.get(key, {})))
        # Every other connected region forwards it: ready once its Envoy reaches a serving region.
        for session in look.sessions:
            if session.region not in (*regions, *leaving) and session.report is not None:
                verdicts.append(self._forwarding_region(dep, session.region, out, look))
        problems = [problem for problem, _ in verdicts if problem]
        if move is not None:
            problems.insert(0, move.describe())
        if any(fatal for _, fatal in verdicts):
            out.phase = DeploymentPhase.FAILED
        elif problems:
            out.phase = DeploymentPhase.PENDING
        else:
            out.phase = DeploymentPhase.READY
        view = state.rollouts.get(key)
        if view is not None:
            out.serving_version = view.serving_version
            if view.rollout is not None:
                out.rollout.CopyFrom(view.rollout)
                rollout = view.rollout
                if rollout.phase in ENDED_WITHOUT_TARGET and (
                    rollout.to_version == dep.spec.version
                ):
                    problems.insert(
                        0,
                        f"version '{rollout.to_version}' {_ENDED[RolloutPhase(rollout.phase)]}: "
                        f"{rollout.reason}; serving '{rollout.from_version}'",
                    )
                elif rollout.phase in ROLLING:
                    problems.insert(
                        0,
                        f"rollout {rollout.from_version} → {rollout.to_version} "
                        f"({rollout.strategy}, {rollout.phase.lower()}, {rollout.weight}%)",
                    )
        out.message = "; ".join(problems)
        return out

    def _deactivated(
        self,
        dep: resources_pb2.Deployment,
        regions: tuple[str, ...],
        out: resources_pb2.DeploymentStatus,
        look: _Look,
    ) -> resources_pb2.DeploymentStatus:
        """Deactivated once every gateway ACKed the routes that refuse it and no worker runs."""
        name, environment = dep.metadata.name, dep.spec.environment
        key = DeploymentKey(environment, name)
        waiting = []
        for session in look.sessions:
            refused = confirmed.refuses(self._confirmed_route(session.region, dep, look))
            workers = look.workers_of(session.region, key)
            if session.region in regions:
                out.regions.add(
                    region=session.region,
                    config_acked=refused,
                    scaled_to_zero=not workers,
                    current_replicas=len(workers),
                )
            if not refused:
                waiting.append(f"{session.region}: waiting for the gateway to ACK the change")
            elif workers:
                waiting.append(f"{session.region}: {len(workers)} worker(s) still stopping")
        out.phase = DeploymentPhase.PENDING if waiting else DeploymentPhase.DEACTIVATED
        out.message = "; ".join(waiting) or (
            f"runs no worker and refuses requests; `meshline activate {name} -e {environment}` "
            "restores it"
        )
        return out

    def _region_of_deployment(
        self,
        dep: resources_pb2.Deployment,
        region: str,
        revisions: Mapping[str, str],
        out: resources_pb2.DeploymentStatus,
        look: _Look,
    ) -> tuple[str, bool]:
        """Fill the region's status; return what keeps it from Ready and whether that is fatal.

        Fatal: Envoy rejected the config, or the current version's workers keep crashing (a
        user must act). Everything else is on its way. Every version the deployment runs here
        (its own, split legs, a mirror) needs a healthy worker.
        """
        key = DeploymentKey(dep.spec.environment, dep.metadata.name)
        route = self._confirmed_route(region, dep, look)
        session = look.session(region)
        reports = look.workers_of(region, key)
        acked = bool(revisions) and confirmed.serves(route, revisions)
        healthy_per_track = []
        current_workers = []
        for track, revision in sorted(revisions.items()):
            # Only workers of the current revision count: during a rollout the old ones do not.
            workers = [
                w
                for w in reports
                if TrackKey(w.environment, w.deployment, w.track) == TrackKey(*key, track)
                and w.revision == revision
            ]
            current_workers += workers
            # Only what Envoy's own health check passed counts, not just the agent's view.
            routable = confirmed.routable_workers(route, track)
            healthy_per_track.append(
                sum(1 for w in workers if w.gateway_routable and w.worker_id in routable)
            )
        node = self._node(look, region)
        rds = node.types.get(RDS)
        state = look.state
        scale = state.scales.get(
            PlacedTrackKey(dep.spec.environment, dep.metadata.name, "", region)
        )
        desired = scale.desired if scale is not None else dep.spec.replicas
        cold_starts = self._cold_starts.of(dep.spec.environment, dep.metadata.name, region)
        r = out.regions.add(
            region=region,
            config_acked=acked,
            desired_replicas=desired,
            healthy_endpoints=min(healthy_per_track, default=0),
            nack_error=self._nack_of(region, key, look),
            acked_version=(rds.acked_version or "") if rds else "",
            queued_requests=sum(w.queued for w in current_workers),
            requests=sum(w.requests for w in current_workers),
            batches=sum(w.batches for w in current_workers),
            scaled_to_zero=_scaled_to_zero(scale, reports),
            cold_starts=cold_starts.count,
            last_cold_start_s=cold_starts.last_s,
            cold_start_seconds_total=cold_starts.seconds_total,
            held_requests=look.held.get((key, region), 0),
            current_replicas=sum(
                1
                for w in current_workers
                if w.track == "" and w.state != agent_pb2.WORKER_STATE_DRAINING
            ),
            pending_reason=scale.problem if scale is not None else "",
            shared_workers=sorted({w.shared_worker for w in current_workers if w.shared_worker}),
            last_restart_reason=_last_restart(current_workers),
        )
        if r.nack_error:
            return f"{region}: {r.nack_error}", True
        if session is None:
            # Its workers report through the agent: without it, health is unknown.
            return f"{region}: no agent connected", False
        if not node.connected:
            return f"{region}: the gateway is not connected to the control plane", False
        if not acked:
            return f"{region}: waiting for the gateway to ACK the config", False
        if not confirmed.enforces(route, self._desired_route(region, dep, look)):
            return f"{region}: waiting for the gateway to ACK the access and rate rules", False
        return workers_verdict(
            region,
            desired,
            r.healthy_endpoints,
            scale is not None and scale.cold,
            current_workers,
            _worker_error(reports),
            scale.failed if scale is not None else None,
            r.pending_reason,
        )

    def _forwarding_region(
        self,
        dep: resources_pb2.Deployment,
        region: str,
        out: resources_pb2.DeploymentStatus,
        look: _Look,
    ) -> tuple[str, bool]:
        """A region outside the placement: it must have ACKed the routes and see a healthy
        gateway of an allowed region in its own Envoy (from its admin API, via the agent)."""
        state = look.state
        key = DeploymentKey(dep.spec.environment, dep.metadata.name)
        tracks = state.revisions.get(key) or {"": ""}
        tier_clusters = [c for t in tracks for c in state.clusters.clients(TrackKey(*key, t))]
        acked = confirmed.forwards(self._confirmed_route(region, dep, look), tracks)
        reachable = look.routable_hosts(region)
        rds = self._node(look, region).types.get(RDS)
        r = out.regions.add(
            region=region,
            config_acked=acked,
            forwarding=True,
            healthy_endpoints=min((reachable.get(c, 0) for c in tier_clusters), default=0),
            nack_error=self._nack_of(region, key, look),
            acked_version=(rds.acked_version or "") if rds else "",
        )
        if r.nack_error:
            return f"{region}: {r.nack_error}", True
        if not acked:
            return f"{region}: waiting for the gateway to ACK the config", False
        route = self._confirmed_route(region, dep, look)
        if not confirmed.enforces(route, self._desired_route(region, dep, look)):
            return f"{region}: waiting for the gateway to ACK the access and rate rules", False
        if r.healthy_endpoints == 0 and _any_desired(dep, look):
            return f"{region}: its gateway does not reach a serving region yet", False
        return "", False

    def _confirmed_route(
        self, region: str, dep: resources_pb2.Deployment, look: _Look
    ) -> DeploymentRoute | None:
        """The deployment's route in the config `region`'s Envoy last ACKed whole."""
        key = DeploymentKey(dep.spec.environment, dep.metadata.name)
        return look.state.confirmed.get(region, {}).get(key)

    def _desired_route(
        self, region: str, dep: resources_pb2.Deployment, look: _Look
    ) -> DeploymentRoute | None:
        """The route the last rebuild meant `region`'s Envoy to have for the deployment."""
        key = DeploymentKey(dep.spec.environment, dep.metadata.name)
        return look.state.routes.get(key, {}).get(region)

    def region_status(self, region: resources_pb2.Region) -> resources_pb2.RegionStatus:
        name = region.metadata.name
        session = self.registry.session(name)
        node = self.cache.node_status(name)
        out = resources_pb2.RegionStatus(agent_connected=session is not None)
        if session is not None:
            out.gateway_address = session.hello.gateway_address
            out.admin_address = session.hello.admin_address
            out.peer_address = session.hello.peer_address
            out.last_seen = f"{session.last_seen:.0f}"
            out.edge_tls, out.edge_certificate_expires_at = served_edge_tls(
                session.hello.edge_tls, session.report
            )
        memory = self._state().memory.get(name)
        if memory is not None:
            out.capacity.CopyFrom(memory.to_proto())
        for type_url, t in node.types.items():
            if t.acked_version:
                out.acked_versions[TYPE_NAMES.get(type_url, type_url)] = t.acked_version
        # The certificate Envoy took, not the one the control plane last sent.
        certificate = self.acked_gateway_certificate(name)
        if certificate is not None:
            out.acked_versions[GATEWAY_CERTIFICATE] = (
                f"serial {certificate.serial}, expires {rfc3339(certificate.not_after)}"
            )
        out.nack_error = self._nack_text(node)
        out.gateway_healthy = bool(
            node.connected
            and not out.nack_error
            and LDS in node.types
            and node.types[LDS].acked_version
        )
        return out

    def region_rooms(self) -> dict[str, RegionRoom]:
        """What each region has room for now (controlplane.api.status.RegionRooms)."""
        reports = {s.region: s.report for s in self.registry.sessions() if s.report is not None}
        return region_rooms(self._state(), reports)

    def acked_gateway_certificate(self, region: str) -> CertificateFacts | None:
        """The peer-path certificate in the secrets `region`'s Envoy ACKed last (None: it
        ACKed none, e.g. after a restart of this process until it does again)."""
        secret = self.cache.acked_resources(region, SDS).get(names.CERTIFICATE_SECRET)
        if secret is None:
            return None
        return certificate_of(secret.tls_certificate.certificate_chain.inline_string)


def region_rooms(
    state: NetworkState, reports: Mapping[str, agent_pb2.AgentReport]
) -> dict[str, RegionRoom]:
    """Each region's memory as the last rebuild saw it, and the tracks its agent reports
    running (not draining) with what their workers use; a track of a deployment that may
    scale to zero with nothing in flight now and no request held counts as idle (it may be
    stopped to make room). Pure."""
    placed: dict[str, list[TrackKey]] = {}
    for key in state.scales:
        placed.setdefault(key.region, []).append(TrackKey(key.environment, key.name, key.track))
    out = {}
    for region in sorted({*state.memory, *reports}):
        signals = load_signals(reports.get(region), placed.get(region, []), state.clusters)
        running = []
        for track, signal in sorted(signals.items()):
            if not signal.workers:
                continue
            key = PlacedTrackKey(*track, region)
            resolved = state.resolved.get(track.deployment_key)
            settings = resolved.scaling if resolved is not None else None
            idle = (
                settings is not None
                and settings.scales_to_zero
                and signal.concurrency == 0
                and not state.held.get(key, 0)
            )
            floor = settings.min_replicas if settings is not None else signal.workers
            running.append(
                Demand(
                    key,
                    wanted=signal.workers,
                    floor=min(floor, signal.workers),
                    running=signal.workers,
                    footprint_bytes=0,
                    memory_bytes=sum(signal.worker_memory),
                    evictable=idle,
                )
            )
        out[region] = RegionRoom(state.memory.get(region), running=tuple(running))
    return out


def served_edge_tls(
    asked: agent_pb2.EdgeTls, report: agent_pb2.AgentReport | None
) -> tuple[str, str]:
    """(edge TLS mode, expiry of the certificate) as clients get them: the mode the agent set
    up, once its own handshake with the public listener got a certificate back (before that,
    or without edge TLS, clients get plain text or nothing: ("", ""))."""
    served = report.edge_certificate_expires_at if report is not None else ""
    if not asked.mode or not served:
        return "", ""
    return asked.mode, served


@functools.lru_cache(maxsize=64)
def certificate_of(chain_pem: str) -> CertificateFacts | None:
    """The facts of a chain's first certificate (None when it holds none)."""
    try:
        return read_certificate_facts(chain_pem)
    except ValueError:
        return None


def workers_verdict(
    region: str,
    desired: int,
    healthy: int,
    cold: bool,
    workers: Sequence[agent_pb2.WorkerReport],
    worker_error: str,
    failed: FailedWake | None,
    pending: str = "",
) -> tuple[str, bool]:
    """What a placed region's workers say once its gateway ACKed the config: what keeps it
    from Ready, and whether that is fatal. A healthy worker of the current version is Ready;
    a region at zero on purpose too, unless its last wake crash-looped (`failed`, remembered
    by the autoscaler after the worker is gone): a user must act, so it stays Failed. A
    region that has no room for the workers it wants (`pending`: why) waits, Pending."""
    if healthy > 0:
        return "", False
    if desired > 0 or (pending and any(crash_looping(w) for w in workers)):
        # A crash loop or a failed wake is fatal (a user must act) even when room is short too.
        problem, fatal = no_healthy_worker(region, cold, workers, worker_error, failed)
        if fatal or not pending:
            return problem, fatal
    if failed is not None:
        return f"{region}: {failed.describe()}", True
    if pending:
        return f"{region}: {pending}", False
    return "", False


def no_healthy_worker(
    region: str,
    cold: bool,
    workers: Sequence[agent_pb2.WorkerReport],
    worker_error: str,
    failed: FailedWake | None = None,
) -> tuple[str, bool]:
    """Why a region that should run `workers` (the current version's) has no healthy one, and
    whether that is fatal. A worker that failed CRASH_LOOP_RESTARTS starts in a row will not
    fix itself: a user must act (Failed) whether it started for `replicas` or to wake from
    zero (`cold`); so while the region starts again after such a wake (`failed`), until a
    worker serves. Anything else is on its way (Pending). `worker_error` is the last error of
    any of the deployment's workers here, shown either way."""
    for w in workers:
        if crash_looping(w):
            return (
                f"{region}: worker {w.worker_id} keeps crashing "
                f"(restart {w.restarts}): {w.last_error}",
                True,
            )
    again = "waking from zero again (cold start)" if cold else "starting again"
    if failed is not None:
        return f"{region}: {failed.describe()}; {again}{worker_error}", True
    if cold:
        return f"{region}: waking from zero (cold start){worker_error}", False
    return f"{region}: no healthy worker of the current version yet{worker_error}", False


def _any_desired(dep: resources_pb2.Deployment, look: _Look) -> bool:
    """Some placed region should run workers (all scaled to zero: nothing to reach)."""
    scales = look.scales_of(DeploymentKey(dep.spec.environment, dep.metadata.name))
    if not scales:
        return dep.spec.replicas > 0
    return any(scale.desired > 0 for scale in scales)


def _last_restart(workers: Iterable[agent_pb2.WorkerReport]) -> str:
    """Why the worker restarted most often here restarted last ('' if none did)."""
    restarted = [w for w in workers if w.restarts and w.last_restart_reason]
    if not restarted:
        return ""
    w = max(restarted, key=lambda w: (w.restarts, w.worker_id))
    return f"worker {w.worker_id} (restart {w.restarts}): {w.last_restart_reason}"


def _worker_error(workers: Iterable[agent_pb2.WorkerReport]) -> str:
    """The last error of one of a deployment's workers that is not healthy ('' if none)."""
    for w in workers:
        if w.last_error and w.state != agent_pb2.WORKER_STATE_HEALTHY:
            return f" (worker {w.worker_id}: {w.last_error})"
    return ""


def _scaled_to_zero(scale: RegionScale | None, workers: list[agent_pb2.WorkerReport]) -> bool:
    """At zero on purpose, and no worker still reported: until a draining worker's drain is
    confirmed (the agent then drops it), the gateway may still send it new requests."""
    return scale is not None and scale.cold and scale.desired == 0 and not workers
