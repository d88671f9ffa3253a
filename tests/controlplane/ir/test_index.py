"""The cluster index: the names the IR gave each track's clusters, by lookup."""

from __future__ import annotations

from dataclasses import replace

from controlplane.ir.build import build_network
from controlplane.ir.index import ClusterIndex
from controlplane.policy.settings import Track
from meshline.keys import TrackKey
from tests.controlplane.ir.test_build import GATEWAYS, REGIONS, _resolved

MAIN, CANARY = TrackKey("production", "d", ""), TrackKey("production", "d", "v2")


def _network_index() -> ClusterIndex:
    dep = _resolved("d", [{"location": {"regions": ["eu-west"]}}])
    dep = replace(dep, tracks=(Track("", "v1", 90), Track("v2", "v2", 10)))
    return ClusterIndex.of(build_network([dep], REGIONS, GATEWAYS, {}))


def test_the_index_finds_the_names_the_built_ir_carries() -> None:
    index = _network_index()
    assert index.clients(MAIN) == ("d.production.grpc", "d.production.http")
    assert index.local(CANARY) == ("d.production@v2~local.grpc", "d.production@v2~local.http")
    assert index.clients(TrackKey("production", "other", "")) == ()


def test_planned_tracks_get_the_names_the_ir_will_give_them() -> None:
    """What the reconciler reads reports with right after a restart, before any IR exists."""
    planned = ClusterIndex.of_tracks([MAIN, CANARY])
    built = _network_index()
    for track in (MAIN, CANARY):
        assert planned.clients(track) == built.clients(track)
        assert planned.local(track) == built.local(track)


def test_merged_knows_both() -> None:
    other = TrackKey("production", "e", "")
    merged = ClusterIndex.of_tracks([MAIN]).merged(ClusterIndex.of_tracks([other]))
    assert merged.clients(MAIN) and merged.clients(other)
