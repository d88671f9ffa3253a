"""Which clusters hold which track's hosts, from the IR that named them.

Agents report Envoy's state by cluster name (routable hosts, traffic); what reads those
reports asks this index for the names of a track's clusters instead of building or parsing
names. A report describes a config that an earlier IR produced, so the index of the last IR
built knows every cluster a report can name, except right after a control-plane restart,
when Envoy still has the previous process's config: `of_tracks` names the planned tracks'
clusters the way the IR will (the same model code assigns them) for that first look.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from controlplane.ir.model import Backend, DeploymentRoute, NetworkIR
from controlplane.ir.names import ClusterNames
from meshline.keys import TrackKey


class ClusterIndex:
    """Track → the clients' clusters of its backend and those of each region's own workers
    (the same names on every gateway)."""

    def __init__(self, routes: Iterable[DeploymentRoute] = ()) -> None:
        clients: dict[TrackKey, ClusterNames] = {}
        local: dict[TrackKey, ClusterNames] = {}
        for route in routes:
            for backend in route.backends:
                key = TrackKey(route.environment, route.deployment, backend.track)
                clients[key] = backend.clusters
                local[key] = backend.local_clusters
        self._clients = MappingProxyType(clients)
        self._local = MappingProxyType(local)

    @staticmethod
    def of(network: NetworkIR) -> ClusterIndex:
        return ClusterIndex(route for gateway in network.gateways for route in gateway.routes)

    @staticmethod
    def of_tracks(tracks: Iterable[TrackKey]) -> ClusterIndex:
        """The names the IR gives these tracks' clusters (one route per deployment)."""
        by_deployment: dict[tuple[str, str], list[str]] = {}
        for track in tracks:
            by_deployment.setdefault((track.environment, track.name), []).append(track.track)
        return ClusterIndex(
            DeploymentRoute(name, environment, tuple(Backend(t, t) for t in names))
            for (environment, name), names in sorted(by_deployment.items())
        )

    def merged(self, other: ClusterIndex) -> ClusterIndex:
        """Both indexes' names; `other`'s where both know a track."""
        out = ClusterIndex()
        out._clients = MappingProxyType({**self._clients, **other._clients})
        out._local = MappingProxyType({**self._local, **other._local})
        return out

    def clients(self, track: TrackKey) -> tuple[str, ...]:
        """The (gRPC, REST) clusters clients' requests for `track` use; () when unknown."""
        names = self._clients.get(track)
        return names.pair if names is not None else ()

    def local(self, track: TrackKey) -> tuple[str, ...]:
        """The (gRPC, REST) clusters of a region's own workers of `track`; () when unknown."""
        names = self._local.get(track)
        return names.pair if names is not None else ()
