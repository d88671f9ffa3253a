"""Drive the flow store → policy → ir → translate → xds, and desired state to agents.

Any change (a commit in the store, an agent report, an Envoy ACK) wakes the
reconciler; it waits a short debounce so a burst becomes one rebuild, then
recomputes everything from its inputs. Each stage stays a pure function.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, field

from google.protobuf import json_format

from controlplane.agents.registry import AgentRegistry
from controlplane.ir.build import GatewayAddress, PlacedDeployment, build_network
from controlplane.policy import PlacementError, resolve_placement
from controlplane.store import Store
from controlplane.translate import translate_gateway
from controlplane.translate.names import cluster_name_grpc, cluster_name_http
from controlplane.xds.cache import SnapshotCache
from meshline.v1 import agent_pb2, resources_pb2

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.02
EDS_TYPE = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
DeploymentKey = tuple[str, str]  # (environment, name)


@dataclass
class NetworkState:
    """What the last rebuild decided; read by the status provider."""

    placements: dict[DeploymentKey, tuple[str, ...]] = field(default_factory=dict)
    placement_errors: dict[DeploymentKey, str] = field(default_factory=dict)


def workload_revision(version: resources_pb2.ModelVersion) -> str:
    """Changes exactly when a running worker must be replaced."""
    payload = json.dumps(
        json_format.MessageToDict(version, preserving_proto_field_name=True), sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


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
        placed = self._resolve()
        sessions = {s.region: s for s in self.registry.sessions() if s.report is not None}
        network = build_network(
            placed,
            {r: GatewayAddress.parse(s.hello.gateway_address) for r, s in sessions.items()},
            {r: list(s.report.workers) for r, s in sessions.items() if s.report is not None},
        )
        for gateway in network.gateways:
            self.cache.set_resources(gateway.region, translate_gateway(gateway).by_type_url())
        for region, session in sessions.items():
            desired = self._desired_state(region, placed)
            if desired != session.last_desired:
                session.last_desired = desired
                session.send(agent_pb2.ConnectResponse(desired=desired))
            released = self._releasable(region, session.report)
            if released:
                session.send(
                    agent_pb2.ConnectResponse(
                        released=agent_pb2.ReleasedWorkers(worker_ids=released)
                    )
                )

    def _resolve(self) -> list[PlacedDeployment]:
        regions = self.store.list_regions()
        placements: dict[DeploymentKey, tuple[str, ...]] = {}
        errors: dict[DeploymentKey, str] = {}
        placed = []
        for dep in self.store.list_deployments():
            key = (dep.spec.environment, dep.metadata.name)
            try:
                environment = self.store.get_environment(dep.spec.environment)
                placement = resolve_placement(dep, environment, regions)
            except PlacementError as exc:
                errors[key] = str(exc)
                continue
            placements[key] = tuple(placement.regions)
            placed.append(
                PlacedDeployment(
                    dep.metadata.name,
                    dep.spec.environment,
                    tuple(placement.regions),
                    dep.spec.replicas,
                )
            )
        self.state = NetworkState(placements, errors)
        return placed

    def _desired_state(self, region: str, placed: list[PlacedDeployment]) -> agent_pb2.DesiredState:
        workloads = []
        for p in placed:
            if region not in p.regions:
                continue
            dep = self.store.get_deployment(p.environment, p.name)
            model = self.store.get_model(dep.spec.model)
            version = next(v for v in model.spec.versions if v.name == dep.spec.version)
            workloads.append(
                agent_pb2.Workload(
                    deployment=p.name,
                    environment=p.environment,
                    revision=workload_revision(version),
                    runtime=version.runtime,
                    model_path=version.path,
                    signature=version.signature,
                    replicas=p.replicas,
                    model_version=version.name,
                )
            )
        return agent_pb2.DesiredState(workloads=workloads)

    def _releasable(self, region: str, report: agent_pb2.AgentReport | None) -> list[str]:
        """Draining workers that the region's Envoy ACKed an EDS without (or as draining)."""
        if report is None:
            return []
        acked = self.cache.acked_resources(region, EDS_TYPE)
        released = []
        for worker in report.workers:
            if worker.state != agent_pb2.WORKER_STATE_DRAINING:
                continue
            key = f"{worker.deployment}.{worker.environment}"
            routable = False
            for cluster, address in (
                (cluster_name_grpc(key), worker.grpc_address),
                (cluster_name_http(key), worker.http_address),
            ):
                assignment = acked.get(cluster)
                if assignment is not None and _routable(assignment, address):
                    routable = True
            if not routable:
                released.append(worker.worker_id)  # re-sent until the agent stops it
        return released


def _routable(assignment: object, address: str) -> bool:
    """True when the assignment lists `address` as a host Envoy may pick (not draining)."""
    from envoy.config.core.v3 import health_check_pb2

    host, port = address.rsplit(":", 1)
    for locality in assignment.endpoints:  # type: ignore[attr-defined]
        for lb in locality.lb_endpoints:
            sock = lb.endpoint.address.socket_address
            if sock.address == host and sock.port_value == int(port):
                return bool(lb.health_status != health_check_pb2.DRAINING)
    return False
