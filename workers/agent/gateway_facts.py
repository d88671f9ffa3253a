"""What the region's Envoy says, as facts about the workers and the clusters clients use.

Pure: the Supervisor reads Envoy's admin (`GatewayView`), and these functions turn one reading
into what it reports. Which clusters are the region's own workers only (`local_clusters`) and
which hosts are outside the region (`remote_hostnames`) and which only hold requests
(`holding_hostnames`) the control plane says: nothing here
reads meaning out of a name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from meshline.v1 import agent_pb2
from workers.agent.envoy_process import GatewayView


@dataclass(frozen=True)
class WorkerAddresses:
    worker_id: str
    grpc_address: str
    http_address: str
    # Its address is a shared worker's, which other workers (models) have too: the gateway's
    # view of it is read by its EDS hostname (its worker id), not by address.
    shared: bool = False
    # Its workload's own clusters (Workload.local_clusters): a shared address serves this
    # worker only once the name is routable there too (after a move, the new track's).
    clusters: frozenset[str] = frozenset()


@dataclass(frozen=True)
class WorkerRoute:
    """One worker as the gateway sees it."""

    routable: bool  # Envoy would send it traffic on both of its ports now
    inflight: int  # requests Envoy has in flight to it (both ports)


@dataclass(frozen=True)
class GatewayFacts:
    # Clusters clients use: routable hosts and the traffic that leaves the region.
    forwarding: Mapping[str, agent_pb2.ClusterHealth]
    # Clusters clients use: requests, errors, latency (cumulative).
    traffic: Mapping[str, agent_pb2.ClusterTraffic]
    workers: Mapping[str, WorkerRoute]  # by worker id


def local_clusters(workloads: Iterable[agent_pb2.Workload]) -> frozenset[str]:
    """The clusters holding only the region's own workers, as the control plane named them
    for these workloads (the desired ones, and those draining workers were started for)."""
    return frozenset(name for w in workloads for name in w.local_clusters)


def gateway_facts(
    view: GatewayView | None,
    workers: Iterable[WorkerAddresses],
    local: frozenset[str],
    remote_hostnames: frozenset[str],
    holding_hostnames: frozenset[str] = frozenset(),
    *,
    told: bool = True,
) -> GatewayFacts:
    """None (admin unreachable, several reads in a row) counts as nothing routable and
    nothing in flight. Until the control plane has `told` the agent which clusters and hosts
    are which (its first DesiredState), nothing is said about the clusters clients use: an
    activator would count as routable, a local cluster as the clients'."""
    if view is None:
        return GatewayFacts({}, {}, {w.worker_id: WorkerRoute(False, 0) for w in workers})
    return GatewayFacts(
        forwarding=forwarding_view(view, local, remote_hostnames, holding_hostnames)
        if told
        else {},
        traffic={c: t for c, t in view.cluster_stats.items() if c not in local} if told else {},
        workers={w.worker_id: _route(view, w) for w in workers},
    )


def _route(view: GatewayView, worker: WorkerAddresses) -> WorkerRoute:
    if worker.shared:
        name = worker.worker_id
        return WorkerRoute(
            name in view.routable_names
            and all(view.name_routable_in(c, name) for c in worker.clusters),
            view.inflight_by_name.get(name, 0),
        )
    return WorkerRoute(
        {worker.grpc_address, worker.http_address} <= view.routable,
        view.inflight_of(worker.grpc_address, worker.http_address),
    )


def forwarding_view(
    view: GatewayView,
    local: frozenset[str],
    remote_hostnames: frozenset[str],
    holding_hostnames: frozenset[str] = frozenset(),
) -> dict[str, agent_pb2.ClusterHealth]:
    """Clusters clients use (not local ones): routable hosts, and the traffic that leaves
    the region (to other regions' gateways, to the activator). Not to a worker: a retired
    worker's host keeps its counters in Envoy for a moment, and counting them as new
    traffic would wake a region that just scaled to zero."""
    out = {}
    for cluster in set(view.routable_by_cluster) | set(view.traffic):
        if cluster in local:
            continue
        hosts = view.traffic.get(cluster, {})
        away = [t for host, t in hosts.items() if view.leaves_region(host, remote_hostnames)]
        # A host that only holds requests (the activator) answers health checks but serves
        # nothing: never a routable host.
        routable = frozenset(
            a
            for a in view.routable_by_cluster.get(cluster, frozenset())
            if view.hostname_in(cluster, a) not in holding_hostnames
        )
        out[cluster] = agent_pb2.ClusterHealth(
            cluster=cluster,
            routable_hosts=len(routable),
            inflight=sum(t.active for t in away),
            requests=sum(t.total for t in away),
            routable_hostnames=view.hostnames_of(routable, cluster),
        )
    return out
