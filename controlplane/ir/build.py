"""Build the network IR from placed deployments and what agents report.

A pure function: the reconciler gathers the inputs (store, policy, agents) and
hands the IR to translate. A region appears only once its agent has reported,
so a restarted control plane never pushes an empty config over a live one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controlplane.ir.model import DeploymentRoute, Endpoint, GatewayIR, NetworkIR
from meshline.v1 import agent_pb2

State = agent_pb2.WorkerState


@dataclass(frozen=True)
class PlacedDeployment:
    """A deployment after policy resolution: where it runs and how many replicas."""

    name: str
    environment: str
    regions: tuple[str, ...]
    replicas: int


@dataclass(frozen=True)
class GatewayAddress:
    host: str
    port: int

    @staticmethod
    def parse(address: str) -> GatewayAddress:
        host, port = address.rsplit(":", 1)
        return GatewayAddress(host, int(port))


def _endpoint(report: agent_pb2.WorkerReport) -> Endpoint:
    grpc_host, grpc_port = report.grpc_address.rsplit(":", 1)
    _, http_port = report.http_address.rsplit(":", 1)
    return Endpoint(
        worker_id=report.worker_id,
        host=grpc_host,
        grpc_port=int(grpc_port),
        http_port=int(http_port),
        healthy=report.state == State.WORKER_STATE_HEALTHY,
        draining=report.state == State.WORKER_STATE_DRAINING,
    )


def build_network(
    deployments: Sequence[PlacedDeployment],
    gateways: Mapping[str, GatewayAddress],
    workers: Mapping[str, Sequence[agent_pb2.WorkerReport]],
) -> NetworkIR:
    """One GatewayIR per region with a gateway; routes for the deployments placed there."""
    result = []
    for region in sorted(gateways):
        address = gateways[region]
        reports = workers.get(region, ())
        routes = []
        for dep in sorted(deployments, key=lambda d: (d.environment, d.name)):
            if region not in dep.regions:
                continue
            endpoints = tuple(
                sorted(
                    (
                        _endpoint(r)
                        for r in reports
                        if r.deployment == dep.name and r.environment == dep.environment
                    ),
                    key=lambda e: e.worker_id,
                )
            )
            routes.append(
                DeploymentRoute(
                    deployment=dep.name, environment=dep.environment, endpoints=endpoints
                )
            )
        result.append(
            GatewayIR(
                region=region,
                listen_host=address.host,
                listen_port=address.port,
                routes=tuple(routes),
            )
        )
    return NetworkIR(gateways=tuple(result))
