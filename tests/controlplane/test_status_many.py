"""Many deployments' statuses from one look at the live state: the same answers as asking one
by one, with the network state read once for the whole listing (not once per deployment and
region, what made `get deployments` quadratic at 10,000 deployments)."""

from __future__ import annotations

from controlplane.agents.registry import AgentRegistry
from controlplane.api.status import ManyStatuses, statuses_of
from controlplane.autoscale import RegionScale
from controlplane.reconcile import NetworkState
from controlplane.status import LiveStatus
from controlplane.xds import SnapshotCache
from meshline.keys import DeploymentKey, PlacedTrackKey
from meshline.v1 import agent_pb2, resources_pb2


def _deployment(
    name: str, replicas: int = 1, deactivated: bool = False
) -> resources_pb2.Deployment:
    dep = resources_pb2.Deployment()
    dep.metadata.name = name
    dep.spec.environment = "production"
    dep.spec.replicas = replicas
    dep.spec.deactivated = deactivated
    return dep


def _registry() -> AgentRegistry:
    """eu runs a healthy worker of d and a crashing one of e; us reports nothing."""
    registry = AgentRegistry()
    eu = registry.connect(agent_pb2.AgentHello(region="eu", gateway_address="127.0.0.1:8080"))
    report = agent_pb2.AgentReport()
    report.workers.add(
        worker_id="d-w1",
        deployment="d",
        environment="production",
        revision="r1",
        state=agent_pb2.WORKER_STATE_HEALTHY,
        gateway_routable=True,
    )
    report.workers.add(
        worker_id="e-w1",
        deployment="e",
        environment="production",
        revision="r1",
        state=agent_pb2.WORKER_STATE_STARTING,
        last_error="out of memory",
    )
    report.clusters.add(cluster="z.production.grpc", routable_hosts=1)
    registry.update_report(eu, report)
    us = registry.connect(agent_pb2.AgentHello(region="us", gateway_address="127.0.0.1:8090"))
    registry.update_report(us, agent_pb2.AgentReport())
    return registry


def _key(name: str) -> DeploymentKey:
    return DeploymentKey("production", name)


STATE = NetworkState(
    placements={
        _key("d"): ("eu",),
        _key("e"): ("eu",),
        _key("z"): ("eu", "us"),
        _key("f"): ("eu",),
    },
    placement_errors={_key("x"): "no region allows it"},
    revisions={_key(n): {"": "r1"} for n in ("d", "e", "z")},
    generations={_key("d"): 2, _key("z"): 5},
    scales={
        PlacedTrackKey("production", "z", "", "eu"): RegionScale(0, cold=True),
        PlacedTrackKey("production", "z", "", "us"): RegionScale(0, cold=True),
        PlacedTrackKey("production", "e", "", "eu"): RegionScale(1),
    },
    held={PlacedTrackKey("production", "z", "", "eu"): 2},
)

DEPLOYMENTS = [
    _deployment("d"),
    _deployment("e"),
    _deployment("x"),
    _deployment("z", replicas=0),
    _deployment("f", deactivated=True),
    _deployment("never-reconciled"),
]


def test_many_statuses_are_each_ones_status_from_one_look() -> None:
    reads = []

    def state() -> NetworkState:
        reads.append(1)
        return STATE

    status = LiveStatus(SnapshotCache(epoch=1), _registry(), state)
    assert isinstance(status, ManyStatuses)
    many = status.deployment_statuses(DEPLOYMENTS)
    assert len(reads) == 1
    alone = [status.deployment_status(d) for d in DEPLOYMENTS]
    assert many == alone
    assert statuses_of(status, DEPLOYMENTS) == alone
    by_name = {d.metadata.name: s for d, s in zip(DEPLOYMENTS, many, strict=True)}
    assert by_name["d"].observed_generation == 2
    assert by_name["x"].phase == "Failed"
    eu = next(r for r in by_name["z"].regions if r.region == "eu")
    assert eu.held_requests == 2 and eu.scaled_to_zero
    assert by_name["f"].message.startswith("eu: waiting for the gateway to ACK the change")
    assert by_name["never-reconciled"].message == "not reconciled yet"


class OneByOne:
    """A status provider without the batch form (as the API tests' static ones)."""

    def deployment_status(self, dep: resources_pb2.Deployment) -> resources_pb2.DeploymentStatus:
        return resources_pb2.DeploymentStatus(phase="Ready", message=dep.metadata.name)

    def region_status(self, region: resources_pb2.Region) -> resources_pb2.RegionStatus:
        return resources_pb2.RegionStatus()


def test_a_provider_without_the_batch_form_is_asked_one_by_one() -> None:
    provider = OneByOne()
    assert not isinstance(provider, ManyStatuses)
    assert [s.message for s in statuses_of(provider, DEPLOYMENTS)] == [
        d.metadata.name for d in DEPLOYMENTS
    ]
