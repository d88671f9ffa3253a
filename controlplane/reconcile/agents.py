"""What each region's agent is told: the workloads to run and the draining workers to stop.

Pure functions of the rebuild's plan, the agent's last report and what its Envoy confirmed;
the reconciler sends what they return. Table-tested in tests/controlplane/reconcile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from controlplane import confirmed
from controlplane.ir.model import DeploymentRoute
from controlplane.ir.names import ACTIVATOR_HOSTNAME, gateway_hostname
from controlplane.policy import ResolvedDeployment
from controlplane.reconcile.plan import NetworkPlan
from meshline.keys import DeploymentKey, PlacedTrackKey, TrackKey
from meshline.v1 import agent_pb2

DRAINING = agent_pb2.WORKER_STATE_DRAINING


def desired_state(
    region: str,
    plan: NetworkPlan,
    last: agent_pb2.DesiredState | None,
    report: agent_pb2.AgentReport | None,
    other_regions: Iterable[str],
) -> agent_pb2.DesiredState:
    """Every workload `region` must run: each placed track at the autoscaler's replicas; what a
    move leaves keeps running as it was told (`last`) until the new placement serves. Each
    workload names its own clusters, and the state the hosts outside the region, so the agent
    reads its Envoy without knowing how the control plane names things."""
    workloads: list[agent_pb2.Workload] = []
    for resolved in plan.resolved:
        move = plan.state.moves.get(resolved.key)
        if move is not None and region in move.keep:
            workloads += kept_workloads(resolved, plan, last, report)
            continue
        if region not in resolved.placement.regions or resolved.deactivated:
            continue
        for track in resolved.tracks:
            workload = agent_pb2.Workload()
            workload.CopyFrom(plan.workloads[TrackKey(*resolved.key, track.name)])
            workload.flavor = resolved.placement.flavor(region)
            scale = plan.state.scales.get(
                PlacedTrackKey(resolved.environment, resolved.name, track.name, region)
            )
            if scale is not None:
                workload.replicas = scale.desired
            workloads.append(workload)
    for workload in workloads:
        key = TrackKey(workload.environment, workload.deployment, workload.track)
        workload.local_clusters[:] = plan.state.clusters.local(key)
    others = sorted(set(other_regions) - {region})
    return agent_pb2.DesiredState(
        workloads=workloads,
        remote_hostnames=[ACTIVATOR_HOSTNAME, *(gateway_hostname(r) for r in others)],
        holding_hostnames=[ACTIVATOR_HOSTNAME],
    )


def kept_workloads(
    resolved: ResolvedDeployment,
    plan: NetworkPlan,
    last: agent_pb2.DesiredState | None,
    report: agent_pb2.AgentReport | None,
) -> list[agent_pb2.Workload]:
    """What a region that a move leaves keeps running while the new placement starts: what its
    agent was last told, unchanged; after a control-plane restart, the current workloads at
    the number of workers it runs."""
    told_before = last.workloads if last is not None else ()
    running = [
        w
        for w in (report.workers if report is not None else ())
        if DeploymentKey(w.environment, w.deployment) == resolved.key and w.state != DRAINING
    ]
    out = []
    for track in resolved.tracks:
        key = TrackKey(resolved.environment, resolved.name, track.name)
        told = next(
            (w for w in told_before if TrackKey(w.environment, w.deployment, w.track) == key),
            None,
        )
        count = sum(1 for w in running if w.track == track.name)
        if told is None and count:
            told = agent_pb2.Workload()
            told.CopyFrom(plan.workloads[TrackKey(*resolved.key, track.name)])
            told.replicas = count
        if told is not None:
            copy = agent_pb2.Workload()
            copy.CopyFrom(told)  # `last` is what was sent: it stays as it was
            out.append(copy)
    return out


def releasable(
    report: agent_pb2.AgentReport | None,
    routes: Mapping[DeploymentKey, DeploymentRoute] | None,
) -> list[str]:
    """Draining workers that the region's Envoy confirmably no longer routes to.

    Only positive evidence counts: `routes`, the typed routes of the newest config the region's
    Envoy ACKed whole in this process, list none of them as routable (not draining). Right after
    a restart nothing has been ACKed yet (`routes` None), so nothing is released.
    """
    if report is None or routes is None:
        return []
    return [
        worker.worker_id
        for worker in report.workers
        if worker.state == DRAINING
        and not confirmed.may_route(
            routes.get(DeploymentKey(worker.environment, worker.deployment)), worker.worker_id
        )
    ]
