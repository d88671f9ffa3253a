"""build_network with a RouteMemo: a deployment whose inputs did not change keeps its route
object on every gateway (a new plan's equal resolution included); any input `_route` reads
changing makes it again; a network-wide change forgets everything."""

from __future__ import annotations

from dataclasses import replace

from controlplane.ir.build import ColdRegions, RouteMemo, activator_endpoint, build_network
from controlplane.ir.model import NetworkIR
from controlplane.policy import ResolvedDeployment
from meshline.keys import DeploymentKey, PlacedDeploymentKey, PlacedTrackKey
from meshline.v1 import agent_pb2
from tests.controlplane.ir.test_build import GATEWAYS, REGIONS, S, _resolved, _worker

NAMES = ("a", "b", "c")


def _plan() -> list[ResolvedDeployment]:
    """A fresh resolution, as every rebuild makes (new objects, equal content)."""
    return [_resolved(name) for name in NAMES]


def _build(
    memo: RouteMemo,
    deployments: list[ResolvedDeployment] | None = None,
    workers: dict[str, list[agent_pb2.WorkerReport]] | None = None,
    **more: object,
) -> NetworkIR:
    return build_network(
        deployments if deployments is not None else _plan(),
        REGIONS,
        GATEWAYS,
        workers or {},
        memo=memo,
        **more,  # type: ignore[arg-type]
    )


def _route(network: NetworkIR, region: str, name: str) -> object:
    gateway = network.gateway(region)
    assert gateway is not None
    return next(r for r in gateway.routes if r.deployment == name)


def _same(a: NetworkIR, b: NetworkIR, name: str) -> bool:
    return all(_route(a, g, name) is _route(b, g, name) for g in GATEWAYS)


def test_an_unchanged_network_keeps_every_route_object() -> None:
    memo = RouteMemo()
    first = _build(memo)
    assert memo.made == len(NAMES) * len(GATEWAYS)
    again = _build(memo)
    assert memo.made == 0
    assert all(_same(first, again, name) for name in NAMES)
    assert again == build_network(_plan(), REGIONS, GATEWAYS, {})


def test_a_changed_deployment_is_made_again_alone() -> None:
    memo = RouteMemo()
    first = _build(memo)
    plan = _plan()
    plan[1] = _resolved("b", [{"routing": {"timeout_s": 5}}])
    again = _build(memo, plan)
    assert memo.made == len(GATEWAYS)
    assert _same(first, again, "a") and _same(first, again, "c")
    assert _route(again, "eu-west", "b").request_timeout_s == 5  # type: ignore[attr-defined]


def test_a_worker_change_makes_that_deployment_again_and_a_counter_does_not() -> None:
    memo = RouteMemo()
    worker = _worker("w-1", "a", S.WORKER_STATE_HEALTHY, 200)
    first = _build(memo, workers={"eu-west": [worker]})
    busier = agent_pb2.WorkerReport()
    busier.CopyFrom(worker)
    busier.requests, busier.inflight, busier.memory_bytes = 100, 3, 1 << 30
    again = _build(memo, workers={"eu-west": [busier]})
    assert memo.made == 0 and _same(first, again, "a")
    draining = agent_pb2.WorkerReport()
    draining.CopyFrom(worker)
    draining.state = S.WORKER_STATE_DRAINING
    third = _build(memo, workers={"eu-west": [draining]})
    # Its own gateway lists the worker, every other one has eu-west's health in its tier.
    assert memo.made == len(GATEWAYS)
    assert _same(first, third, "b") and _same(first, third, "c")


def test_offload_cold_and_leaving_inputs_are_per_deployment() -> None:
    memo = RouteMemo()
    activator = activator_endpoint("127.0.0.1", 7100, 7101)
    cold = ColdRegions(frozenset(), activator)
    first = _build(memo, cold=cold)
    waking = ColdRegions(frozenset({PlacedTrackKey("production", "a", "", "eu-west")}), activator)
    _build(memo, cold=waking)
    assert memo.made == len(GATEWAYS)
    _build(memo, cold=waking, offload={PlacedDeploymentKey("production", "b", "eu-west"): 50})
    assert memo.made == 1
    last = _build(
        memo,
        cold=waking,
        offload={PlacedDeploymentKey("production", "b", "eu-west"): 50},
        leaving={DeploymentKey("production", "c"): ("us-east",)},
    )
    assert memo.made == len(GATEWAYS)
    assert _route(last, "eu-west", "a") is not _route(first, "eu-west", "a")


def test_a_network_wide_change_forgets_every_route() -> None:
    memo = RouteMemo()
    _build(memo)
    moved = dict(REGIONS)
    region = type(REGIONS["eu-west"])()
    region.CopyFrom(REGIONS["eu-west"])
    region.spec.country = "BE"
    moved["eu-west"] = region
    build_network(_plan(), moved, GATEWAYS, {}, memo=memo)
    assert memo.made == len(NAMES) * len(GATEWAYS)
    gateways = {**GATEWAYS, "us-east": replace(GATEWAYS["us-east"], port=8999)}
    build_network(_plan(), moved, gateways, {}, memo=memo)
    assert memo.made == len(NAMES) * len(GATEWAYS)


def test_a_deployment_gone_is_forgotten() -> None:
    memo = RouteMemo()
    _build(memo)
    _build(memo, _plan()[:2])
    _build(memo)
    assert memo.made == len(GATEWAYS)
