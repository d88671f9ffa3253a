"""The cluster names the IR gives tracks, for tests that read agents' reports."""

from __future__ import annotations

from controlplane.ir.index import ClusterIndex
from controlplane.ir.model import Backend, DeploymentRoute
from meshline.keys import TrackKey


def cluster_index(*tracks: TrackKey) -> ClusterIndex:
    """The index of an IR that routes these tracks (one route per deployment)."""
    by_deployment: dict[tuple[str, str], list[str]] = {}
    for track in tracks:
        by_deployment.setdefault((track.environment, track.name), []).append(track.track)
    return ClusterIndex(
        DeploymentRoute(name, environment, tuple(Backend(t, t or "v1") for t in names))
        for (environment, name), names in by_deployment.items()
    )
