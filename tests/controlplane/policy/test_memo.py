"""ResolveMemo: a network resolved with memory equals one resolved afresh, pass after pass,
whatever changed in between; only what changed is resolved again; refusals are remembered as
refusals; entries not asked for in a few passes are dropped."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from controlplane.policy import ResolveMemo, resolve_network
from controlplane.policy.memo import KEEP_PASSES
from meshline.v1.resources_pb2 import Deployment, Environment, Region
from tests.controlplane.policy.world import dep, env, regions, rule

EU_WEST = rule({"location": {"regions": ["eu-west"]}})


def _deployments() -> list[Deployment]:
    out = [dep([EU_WEST], name=f"d{i}", created_at=f"2026-01-01T00:00:0{i}Z") for i in range(4)]
    out.append(dep([rule({"location": {"continents": ["NA"]}})], name="na"))
    out.append(dep([rule({"flavor": {"gpu": ["h100"]}})], name="gpu", replicas=2))
    return out


World = tuple[list[Deployment], dict[str, Environment], list[Region]]


def _change_a_deployment(world: World) -> World:
    deployments, envs, places = world
    changed = Deployment()
    changed.CopyFrom(deployments[1])
    changed.spec.replicas = 2
    return [deployments[0], changed, *deployments[2:]], envs, places


def _change_the_environment(world: World) -> World:
    deployments, _, places = world
    mandatory = rule({"location": {"continents": ["EU"]}}, "mandatory")
    return deployments, {"production": env([mandatory])}, places


def _fill_a_region(world: World) -> World:
    deployments, envs, _ = world
    return deployments, envs, regions({"eu-west": 3})  # the fourth d* no longer fits


def _add_and_remove(world: World) -> World:
    deployments, envs, places = world
    return [*deployments[1:], dep([EU_WEST], name="new")], envs, places


@pytest.mark.parametrize(
    "change",
    [_change_a_deployment, _change_the_environment, _fill_a_region, _add_and_remove],
)
def test_a_remembered_network_equals_a_fresh_one(change: Callable[[World], World]) -> None:
    memo = ResolveMemo()
    world: World = (_deployments(), {"production": env()}, regions())
    for step in range(3):
        deployments, envs, places = world
        remembered = resolve_network(deployments, envs, places, memo)
        fresh = resolve_network(deployments, envs, places)
        # By value (a SourcedPolicy compares by identity): every field, policies as text.
        assert repr(remembered.deployments) == repr(fresh.deployments), step
        assert remembered.errors == fresh.errors, step
        world = change(world)


def test_only_what_changed_is_resolved_again() -> None:
    memo = ResolveMemo()
    deployments, envs, places = _deployments(), {"production": env()}, regions()
    resolve_network(deployments, envs, places, memo)
    assert (memo.resolved, memo.remembered) == (6, 0)
    resolve_network(deployments, envs, places, memo)
    assert (memo.resolved, memo.remembered) == (0, 6)
    changed, _, _ = _change_a_deployment((deployments, envs, places))
    resolve_network(changed, envs, places, memo)
    assert (memo.resolved, memo.remembered) == (1, 5)
    # Another environment: every deployment of it may resolve otherwise.
    _, other, _ = _change_the_environment((deployments, envs, places))
    resolve_network(deployments, other, places, memo)
    assert (memo.resolved, memo.remembered) == (6, 0)


def test_a_refusal_is_remembered_as_a_refusal() -> None:
    memo = ResolveMemo()
    places = regions({"eu-west": 1})
    deployments: Sequence[Deployment] = [dep([EU_WEST], name="big", replicas=2)]
    first = resolve_network(deployments, {"production": env()}, places, memo)
    again = resolve_network(deployments, {"production": env()}, places, memo)
    assert memo.remembered == 1
    assert first.errors == again.errors and "max_replicas 1" in again.errors[("production", "big")]
    assert again.deployments == {}


def test_entries_not_asked_for_are_dropped() -> None:
    memo = ResolveMemo()
    envs, places = {"production": env()}, regions()
    resolve_network(_deployments(), envs, places, memo)
    assert len(memo) == 6
    for _ in range(KEEP_PASSES):
        resolve_network([dep([EU_WEST], name="only")], envs, places, memo)
    assert len(memo) == 1
