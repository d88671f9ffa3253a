"""What an apply does to deployments it does not name: every move and re-route is reported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.api.apply import apply_request
from controlplane.store import Store
from meshline.v1.api_pb2 import Resource
from tests.controlplane.store.builders import (
    deployment,
    environment,
    location,
    model,
    model_file,
    policy,
    region,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    artifact = model_file(tmp_path)
    with Store.open(tmp_path / "store.db") as s:
        s.apply(
            [
                region("eu", "DE", "EU"),
                region("us", "US", "NA"),
                environment("production"),
                model("mnist", [("v1", artifact), ("v2", artifact)]),
                deployment("fraud", "mnist", "v1"),
                deployment("geo", "mnist", "v1", policies=[location(["eu"])]),
                deployment("zeta", "mnist", "v1"),
            ]
        )
        yield s


def _effects(
    store: Store, docs: list[Resource]
) -> list[tuple[str, list[str], list[str], list[str]]]:
    reply = apply_request(store, docs, dry_run=True)
    return [
        (e.name, list(e.placement_before), list(e.placement_after), list(e.changed))
        for e in reply.effects
    ]


@pytest.mark.parametrize(
    ("docs", "effects"),
    [
        # An environment policy moves every deployment it leaves in fewer regions.
        (
            [environment("production", [location(countries=["DE"], mode="mandatory")])],
            [("fraud", ["eu", "us"], ["eu"], []), ("zeta", ["eu", "us"], ["eu"], [])],
        ),
        # A region's capacity: the oldest deployments keep their room, the newest moves.
        (
            [region("us", "US", "NA", max_replicas=1)],
            [("zeta", ["eu", "us"], ["eu"], [])],
        ),
        # An environment routing policy re-routes every deployment without moving any.
        (
            [environment("production", [policy({"failover": {"disabled": True}}, "mandatory")])],
            [
                ("fraud", ["eu", "us"], ["eu", "us"], ["failover"]),
                ("geo", ["eu"], ["eu"], ["failover"]),
                ("zeta", ["eu", "us"], ["eu", "us"], ["failover"]),
            ],
        ),
        # A deployment the request names: its own settings are no side effect, its move is.
        (
            [
                deployment("fraud", "mnist", "v2", policies=[location(["us"])]),
                deployment("geo", "mnist", "v2", policies=[location(["eu"])]),
            ],
            [("fraud", ["eu", "us"], ["us"], [])],
        ),
        # Nothing moves: nothing to tell.
        ([environment("production")], []),
    ],
)
def test_moves_and_reroutes_of_stored_deployments(
    store: Store, docs: list[Resource], effects: list[tuple[str, list[str], list[str], list[str]]]
) -> None:
    assert _effects(store, docs) == effects


def test_each_changed_value_is_shown_before_and_after(store: Store) -> None:
    docs = [
        environment(
            "production",
            [
                policy({"failover": {"disabled": True}}, "mandatory"),
                policy({"routing": {"timeout_s": 5, "retries": {"attempts": 4}}}, "mandatory"),
            ],
        )
    ]
    [fraud, *_] = apply_request(store, docs, dry_run=True).effects
    assert list(fraud.changed) == ["routing", "failover"]
    assert list(fraud.details) == [
        "routing.timeout_s: 30 → 5",
        "routing.retry.num_retries: 3 → 4",
        "failover.enabled: true → false",
    ]


def test_a_real_apply_reports_what_its_dry_run_did(store: Store) -> None:
    docs = [environment("production", [location(countries=["DE"], mode="mandatory")])]
    dry = apply_request(store, docs, dry_run=True)
    real = apply_request(store, docs)
    assert [e.name for e in real.effects] == ["fraud", "zeta"]
    assert real.effects == dry.effects
    # Applied once, the same document moves nothing any more.
    assert list(apply_request(store, docs).effects) == []
