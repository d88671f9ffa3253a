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
from dataclasses import dataclass, field

from envoy.config.core.v3 import health_check_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from controlplane.agents.registry import AgentRegistry, AgentSession
from controlplane.ir.build import GatewayAddress, PlacedDeployment, build_network
from controlplane.policy import PlacementError, resolve_placement
from controlplane.store import Store, StoreSnapshot
from controlplane.translate import translate_gateway
from controlplane.translate.endpoints import host_health
from controlplane.translate.names import cluster_name_grpc, cluster_name_http
from controlplane.xds import CLUSTER, ENDPOINT
from controlplane.xds.cache import SnapshotCache
from meshline.v1 import agent_pb2, resources_pb2

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.02
DeploymentKey = tuple[str, str]  # (environment, name)


@dataclass
class NetworkState:
    """What the last rebuild decided; read by the status provider."""

    placements: dict[DeploymentKey, tuple[str, ...]] = field(default_factory=dict)
    placement_errors: dict[DeploymentKey, str] = field(default_factory=dict)
    # The worker revision each deployment should run (status counts only those workers).
    revisions: dict[DeploymentKey, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkPlan:
    """Placement and workloads of every deployment, from one consistent store snapshot."""

    placed: tuple[PlacedDeployment, ...]
    workloads: dict[DeploymentKey, agent_pb2.Workload]
    state: NetworkState


def workload_revision(version: resources_pb2.ModelVersion) -> str:
    """Changes exactly when a running worker must be replaced."""
    payload = json.dumps(
        json_format.MessageToDict(version, preserving_proto_field_name=True), sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def plan_network(snapshot: StoreSnapshot) -> NetworkPlan:
    """Resolve every deployment's placement (policy) and the workload its regions run."""
    environments = {e.metadata.name: e for e in snapshot.environments}
    models = {m.metadata.name: m for m in snapshot.models}
    state = NetworkState()
    placed = []
    workloads = {}
    for dep in snapshot.deployments:
        key = (dep.spec.environment, dep.metadata.name)
        try:
            placement = resolve_placement(dep, environments[dep.spec.environment], snapshot.regions)
        except PlacementError as exc:
            state.placement_errors[key] = str(exc)
            continue
        version = next(
            v for v in models[dep.spec.model].spec.versions if v.name == dep.spec.version
        )
        revision = workload_revision(version)
        state.placements[key] = tuple(placement.regions)
        state.revisions[key] = revision
        placed.append(
            PlacedDeployment(
                dep.metadata.name, dep.spec.environment, tuple(placement.regions), dep.spec.replicas
            )
        )
        workloads[key] = agent_pb2.Workload(
            deployment=dep.metadata.name,
            environment=dep.spec.environment,
            revision=revision,
            runtime=version.runtime,
            model_path=version.path,
            signature=version.signature,
            replicas=dep.spec.replicas,
            model_version=version.name,
        )
    return NetworkPlan(tuple(placed), workloads, state)


class Reconciler:
    def __init__(self, store: Store, registry: AgentRegistry, cache: SnapshotCache) -> None:
        self.store = store
        self.registry = registry
        self.cache = cache
        self.state = NetworkState()
        self._wake = asyncio.Event()
        store.add_listener(lambda _event: self.trigger())
        registry.add_listener(lambda _region: self.trigger())
        cache.add_listener(lambda _node: self.trigger())

    def trigger(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(DEBOUNCE_S)
            self._wake.clear()
            try:
                self.rebuild()
            except Exception:
                log.exception("rebuild failed; keeping the last good config")

    # -- one pass ------------------------------------------------------------------------

    def rebuild(self) -> None:
        plan = plan_network(self.store.snapshot())
        self.state = plan.state
        # A region is configured only once its agent has reported: a restarted control plane
        # must not push a config without endpoints over the one Envoy is serving.
        sessions = {s.region: s for s in self.registry.sessions() if s.report is not None}
        network = build_network(
            plan.placed,
            {r: GatewayAddress.parse(s.hello.gateway_address) for r, s in sessions.items()},
            {r: list(s.report.workers) for r, s in sessions.items() if s.report is not None},
        )
        for gateway in network.gateways:
            try:
                self.cache.set_resources(gateway.region, translate_gateway(gateway).by_type_url())
            except Exception:
                log.exception(
                    "cannot configure region %s; it keeps its last config", gateway.region
                )
        for region, session in sessions.items():
            try:
                self._talk_to_agent(region, session, plan)
            except Exception:
                log.exception("cannot update the agent of region %s", region)

    def _talk_to_agent(self, region: str, session: AgentSession, plan: NetworkPlan) -> None:
        desired = agent_pb2.DesiredState(
            workloads=[
                plan.workloads[(p.environment, p.name)] for p in plan.placed if region in p.regions
            ]
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

        Only positive evidence counts: an ACK received by this control plane of a CDS without
        the worker's clusters, or of an EDS listing it as draining or not at all. Right after a
        restart nothing has been ACKed yet, so nothing is released.
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
            routable = any(
                cluster in clusters and _may_route(endpoints.get(cluster), address)
                for cluster, address in (
                    (cluster_name_grpc(key), worker.grpc_address),
                    (cluster_name_http(key), worker.http_address),
                )
            )
            if not routable:
                released.append(worker.worker_id)
        return released


def _may_route(assignment: Message | None, address: str) -> bool:
    """Could Envoy pick `address` under this ACKed assignment? Unknown counts as yes."""
    if assignment is None:
        return True
    status = host_health(assignment).get(address)
    return status is not None and status != health_check_pb2.DRAINING
