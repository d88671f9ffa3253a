"""Table tests of the versions a deployment runs: its own first, split legs, then a mirror."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.policy import deployment_tracks, resolve_deployment
from controlplane.policy.settings import Track
from meshline.v1.resources_pb2 import TrafficPolicy
from tests.controlplane.policy.world import dep, env, regions, rule


def _traffic(split: dict[str, int] | None = None, mirror: tuple[str, float] | None = None) -> Any:
    out: dict[str, Any] = {}
    if split is not None:
        out["split"] = [{"version": v, "weight": w} for v, w in split.items()]
    if mirror is not None:
        out["mirror"] = {"version": mirror[0], "percent": mirror[1]}
    return rule({"traffic": out}).traffic


TRACKS = [
    pytest.param(None, [Track("", "v1", 100)], id="no-traffic-policy"),
    pytest.param(TrafficPolicy(), [Track("", "v1", 100)], id="empty-traffic-policy"),
    pytest.param(
        _traffic({"v1": 90, "v2": 10}),
        [Track("", "v1", 90), Track("v2", "v2", 10)],
        id="split-own-and-one-leg",
    ),
    pytest.param(
        _traffic({"v2": 30, "v1": 50, "v3": 20}),
        [Track("", "v1", 50), Track("v2", "v2", 30), Track("v3", "v3", 20)],
        id="own-first-whatever-the-split-order",
    ),
    pytest.param(
        _traffic({"v1": 0, "v2": 100}),
        [Track("", "v1", 0), Track("v2", "v2", 100)],
        id="own-version-may-weigh-zero",
    ),
    pytest.param(
        _traffic(mirror=("v3", 5)),
        [Track("", "v1", 100), Track("v3", "v3", 0, 5.0)],
        id="mirror-only-adds-a-zero-weight-track",
    ),
    pytest.param(
        _traffic({"v1": 80, "v2": 20}, ("v3", 12.5)),
        [Track("", "v1", 80), Track("v2", "v2", 20), Track("v3", "v3", 0, 12.5)],
        id="split-then-mirror",
    ),
    pytest.param(
        _traffic({"v1": 80, "v2": 20}, ("v2", 50)),
        [Track("", "v1", 80), Track("v2", "v2", 20, 50.0)],
        id="mirror-onto-an-existing-leg",
    ),
]


@pytest.mark.parametrize(("traffic", "expected"), TRACKS)
def test_deployment_tracks(traffic: TrafficPolicy | None, expected: list[Track]) -> None:
    tracks = deployment_tracks(dep(version="v1"), traffic)
    assert list(tracks) == expected
    assert tracks[0].name == "" and tracks[0].version == "v1"
    assert sum(t.weight for t in tracks) == 100


def test_resolved_tracks_come_from_the_deployments_traffic_policy() -> None:
    resolved = resolve_deployment(
        dep(
            [
                rule(
                    {
                        "traffic": {
                            "split": [
                                {"version": "v1", "weight": 70},
                                {"version": "v2", "weight": 30},
                            ],
                            "mirror": {"version": "v3", "percent": 10},
                        }
                    }
                )
            ]
        ),
        env(),
        regions(),
    )
    assert resolved.tracks == (
        Track("", "v1", 70),
        Track("v2", "v2", 30),
        Track("v3", "v3", 0, 10.0),
    )
    assert [p.rule_type for p in resolved.applied] == ["traffic"]
