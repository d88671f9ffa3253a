"""Status is the truth: Ready only after the gateway ACKed; a NACK shows Envoy's text.

A raw ADS client plays the region's Envoy against the real AdsServer, so the
ACKs and NACKs are real protocol messages, not flags set by the test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from controlplane.agents.registry import AgentRegistry
from controlplane.autoscale import (
    CRASH_LOOP_RESTARTS,
    Autoscaler,
    CrashLoop,
    FailedWake,
    RegionScale,
    load_signals,
)
from controlplane.autoscale.admission import RegionBudget
from controlplane.autoscale.autoscaler import ScaleInput
from controlplane.ir.index import ClusterIndex
from controlplane.ir.model import (
    TIER_GATEWAY,
    Backend,
    DeploymentRoute,
    Endpoint,
    GatewayIR,
    HealthCheckSettings,
    Tier,
)
from controlplane.moves import Move
from controlplane.policy.scaling import ScalingSettings
from controlplane.quarantine import GatewayConfigs, Quarantine
from controlplane.reconcile import NetworkState
from controlplane.status import (
    CDS,
    EDS,
    LDS,
    RDS,
    LiveStatus,
    no_healthy_worker,
    workers_verdict,
)
from controlplane.xds import EXTENSION_CONFIG as ECDS
from controlplane.xds import SnapshotCache
from meshline.keys import PlacedTrackKey, TrackKey
from meshline.v1 import agent_pb2, resources_pb2
from tests.controlplane.xds.ads_client import AdsClient, eventually

Connect = Callable[[str], Awaitable[AdsClient]]


def _gateway(healthy: bool, check_interval_s: float = 1.0) -> GatewayIR:
    endpoint = Endpoint("w1", "127.0.0.1", 9001, 9002, healthy=healthy)
    route = DeploymentRoute.local(
        "d",
        "production",
        (endpoint,),
        health_check=HealthCheckSettings(interval_s=check_interval_s),
    )
    return GatewayIR("eu", "127.0.0.1", 8080, (route,))


class Rebuilds:
    """Pushes gateways' configs the way the reconciler does (GatewayConfigs) and, like the
    rebuild that follows each of Envoy's answers, gives status the typed routes each region's
    Envoy ACKed whole. `base` holds the rest of what a rebuild decided."""

    def __init__(self, cache: SnapshotCache, base: NetworkState) -> None:
        self.configs = GatewayConfigs(cache)
        self.base = base
        self._gateways: dict[str, GatewayIR] = {}

    def push(self, gateway: GatewayIR) -> None:
        self._gateways[gateway.region] = gateway
        self.configs.configure(gateway, {})

    def __call__(self) -> NetworkState:
        for gateway in self._gateways.values():
            self.configs.configure(gateway, {})
        routes = [r for g in self._gateways.values() for r in g.routes]
        return replace(self.base, confirmed=self.configs.confirmed(), clusters=ClusterIndex(routes))


def _agent(registry: AgentRegistry) -> None:
    """Region eu's agent, reporting worker w1 of revision r1 (the one in _gateway)."""
    session = registry.connect(agent_pb2.AgentHello(region="eu", gateway_address="127.0.0.1:8080"))
    report = agent_pb2.AgentReport()
    report.workers.add(
        worker_id="w1",
        deployment="d",
        environment="production",
        revision="r1",
        grpc_address="127.0.0.1:9001",
        http_address="127.0.0.1:9002",
        state=agent_pb2.WORKER_STATE_HEALTHY,
        gateway_routable=True,
    )
    registry.update_report(session, report)


STATE = NetworkState(
    placements={("production", "d"): ("eu",)}, revisions={("production", "d"): {"": "r1"}}
)


def _deployment() -> resources_pb2.Deployment:
    dep = resources_pb2.Deployment()
    dep.metadata.name = "d"
    dep.spec.environment = "production"
    dep.spec.replicas = 1
    return dep


async def _sync_all(
    client: AdsClient, cache: SnapshotCache, nack_clusters: str = "", region: str = "eu"
) -> None:
    """Subscribe to every type and ACK (or NACK CDS) what arrives."""
    resources = cache.snapshot(region)
    assert resources is not None
    for type_url in (CDS, EDS, ECDS, LDS, RDS):
        names = (
            []
            if type_url in (CDS, LDS)
            else sorted(resources.types[type_url].resources)
            if type_url in (EDS, ECDS)
            else ["gateway"]
        )
        await client.request(type_url, names)
        response = await client.recv()
        if type_url == CDS and nack_clusters:
            await client.nack(response, nack_clusters)
        else:
            await client.ack(response, names)


async def test_ready_only_after_ack_and_nack_shows_envoys_text(
    cache: SnapshotCache, connect: Connect
) -> None:
    state = STATE
    registry = AgentRegistry()
    rebuilds = Rebuilds(cache, state)
    status = LiveStatus(cache, registry, rebuilds)
    rebuilds.push(_gateway(healthy=True))
    before = status.deployment_status(_deployment())
    assert before.phase == "Pending" and "no agent connected" in before.message

    _agent(registry)
    client = await connect("eu")
    await _sync_all(client, cache)
    await eventually(lambda: status.deployment_status(_deployment()).phase == "Ready", "Ready")
    after = status.deployment_status(_deployment())
    assert after.phase == "Ready", after.message
    assert after.regions[0].config_acked and after.regions[0].healthy_endpoints == 1

    region = resources_pb2.Region()
    region.metadata.name = "eu"
    assert status.region_status(region).gateway_healthy

    # Without its agent, nobody vouches for the workers' health any more.
    session = registry.session("eu")
    assert session is not None
    registry.disconnect(session)
    orphaned = status.deployment_status(_deployment())
    assert orphaned.phase == "Pending" and "no agent connected" in orphaned.message
    _agent(registry)

    # The next config is rejected by "Envoy": status carries its words, the old config stays.
    changed = _gateway(healthy=True, check_interval_s=2.0)  # a cluster-level change
    rebuilds.push(changed)
    response = await client.recv()
    while response.type_url != CDS:
        await client.ack(response)
        response = await client.recv()
    await client.nack(response, "cluster d.production.grpc: invalid connect_timeout")

    def nacked() -> bool:
        return cache.node_status("eu").types[CDS].nack is not None

    await eventually(nacked, "NACK recorded")
    failed = status.deployment_status(_deployment())
    assert failed.phase == "Failed"
    assert "invalid connect_timeout" in failed.message
    assert "invalid connect_timeout" in failed.regions[0].nack_error
    assert not status.region_status(region).gateway_healthy


async def _status_once_acked(
    cache: SnapshotCache, connect: Connect, state: NetworkState, healthy: bool
) -> resources_pb2.DeploymentStatus:
    """Region eu's agent reports w1 (r1); its Envoy ACKs a config with w1; the status then."""
    registry = AgentRegistry()
    _agent(registry)
    rebuilds = Rebuilds(cache, state)
    status = LiveStatus(cache, registry, rebuilds)
    rebuilds.push(_gateway(healthy=healthy))
    await _sync_all(await connect("eu"), cache)

    def acked() -> bool:
        return status.deployment_status(_deployment()).regions[0].config_acked

    await eventually(acked, "config ACKed")
    return status.deployment_status(_deployment())


async def test_unhealthy_endpoint_is_not_ready(cache: SnapshotCache, connect: Connect) -> None:
    result = await _status_once_acked(cache, connect, STATE, healthy=False)
    assert result.phase == "Pending"
    assert result.regions[0].config_acked and result.regions[0].healthy_endpoints == 0
    assert "no healthy worker" in result.message


async def test_workers_of_an_old_version_do_not_make_it_ready(
    cache: SnapshotCache, connect: Connect
) -> None:
    """Mid-rollout: the gateway serves healthy r1 workers, but the deployment now wants r2."""
    rolling = NetworkState(placements=STATE.placements, revisions={("production", "d"): {"": "r2"}})
    result = await _status_once_acked(cache, connect, rolling, healthy=True)
    assert result.phase == "Pending"
    assert result.regions[0].healthy_endpoints == 0
    assert "current version" in result.message


def _forwarding_gateway() -> GatewayIR:
    """Region us does not run d: its only tier is eu's gateway."""
    gateway = Endpoint("gateway.eu", "127.0.0.1", 8080, 8080)
    backend = Backend(
        "", "v1", tiers=(Tier("eu", TIER_GATEWAY, 0, (gateway,)),), local_endpoints=None
    )
    return GatewayIR("us", "127.0.0.1", 8090, (DeploymentRoute("d", "production", (backend,)),))


async def test_a_forwarding_region_must_reach_a_serving_region(
    cache: SnapshotCache, connect: Connect
) -> None:
    registry = AgentRegistry()
    _agent(registry)
    us = registry.connect(agent_pb2.AgentHello(region="us", gateway_address="127.0.0.1:8090"))
    registry.update_report(us, agent_pb2.AgentReport())
    rebuilds = Rebuilds(cache, STATE)
    status = LiveStatus(cache, registry, rebuilds)
    rebuilds.push(_gateway(healthy=True))
    rebuilds.push(_forwarding_gateway())
    await _sync_all(await connect("eu"), cache)
    await _sync_all(await connect("us"), cache, region="us")

    def us_acked() -> bool:
        regions = status.deployment_status(_deployment()).regions
        return any(r.region == "us" and r.config_acked for r in regions)

    await eventually(us_acked, "us ACKed")
    waiting = status.deployment_status(_deployment())
    assert waiting.phase == "Pending"
    assert "us: its gateway does not reach a serving region yet" in waiting.message
    us_status = next(r for r in waiting.regions if r.region == "us")
    assert us_status.forwarding and us_status.healthy_endpoints == 0

    # The us agent reports that its Envoy health-checked eu's gateway (admin /clusters).
    report = agent_pb2.AgentReport()
    for cluster in ("d.production.grpc", "d.production.http"):
        report.clusters.add(cluster=cluster, routable_hosts=1)
    registry.update_report(us, report)
    ready = status.deployment_status(_deployment())
    assert ready.phase == "Ready", ready.message
    assert next(r for r in ready.regions if r.region == "us").healthy_endpoints == 1


def test_a_region_a_move_leaves_is_shown_serving_while_the_move_waits(
    cache: SnapshotCache,
) -> None:
    """Moving d from us to eu: us is not a forwarder that reaches nothing, it still serves."""
    registry = AgentRegistry()
    registry.connect(agent_pb2.AgentHello(region="eu", gateway_address="127.0.0.1:8080"))
    us = registry.connect(agent_pb2.AgentHello(region="us", gateway_address="127.0.0.1:8090"))
    report = agent_pb2.AgentReport()
    report.workers.add(
        worker_id="u1",
        deployment="d",
        environment="production",
        revision="r1",
        state=agent_pb2.WORKER_STATE_HEALTHY,
        gateway_routable=True,
    )
    registry.update_report(us, report)
    move = Move(("us",), ("eu",), ("us",), "waiting for a healthy worker in eu")
    moving = NetworkState(
        placements=STATE.placements,
        revisions=STATE.revisions,
        moves={("production", "d"): move},
    )
    result = LiveStatus(cache, registry, lambda: moving).deployment_status(_deployment())
    assert result.phase == "Pending"
    assert result.message.startswith(
        "moving from us to eu: waiting for a healthy worker in eu; us keeps serving it"
    )
    assert "reach" not in result.message
    rows = {r.region: r for r in result.regions}
    assert list(result.placement) == ["eu"] and not rows["eu"].leaving
    assert rows["us"].leaving and not rows["us"].forwarding
    assert (rows["us"].current_replicas, rows["us"].desired_replicas) == (1, 1)


def test_scaled_to_zero_only_once_no_worker_is_reported_draining(cache: SnapshotCache) -> None:
    """The autoscaler's zero is a wish; while a draining worker is still reported, the gateway
    may still send it new requests, so the region is not yet "scaled to zero"."""
    idle = NetworkState(
        placements=STATE.placements,
        revisions=STATE.revisions,
        scales={PlacedTrackKey("production", "d", "", "eu"): RegionScale(desired=0, cold=True)},
    )
    registry = AgentRegistry()
    _agent(registry)
    session = registry.session("eu")
    assert session is not None and session.report is not None
    draining = agent_pb2.AgentReport()
    draining.CopyFrom(session.report)
    draining.workers[0].state = agent_pb2.WORKER_STATE_DRAINING
    draining.workers[0].gateway_routable = False
    registry.update_report(session, draining)
    status = LiveStatus(cache, registry, lambda: idle)

    region = status.deployment_status(_deployment()).regions[0]
    assert (region.current_replicas, region.desired_replicas) == (0, 0)
    assert not region.scaled_to_zero

    registry.update_report(session, agent_pb2.AgentReport())  # its drain confirmed: gone
    assert status.deployment_status(_deployment()).regions[0].scaled_to_zero


def _crashing(wid: str = "w1") -> agent_pb2.WorkerReport:
    """A current-version worker whose start failed CRASH_LOOP_RESTARTS times in a row."""
    return agent_pb2.WorkerReport(
        worker_id=wid,
        deployment="d",
        environment="production",
        revision="r1",
        state=agent_pb2.WORKER_STATE_STARTING,
        restarts=CRASH_LOOP_RESTARTS,
        consecutive_failures=CRASH_LOOP_RESTARTS,
        last_error="exited with code 1 after 0.2s: not a loadable model",
    )


def _starting(failures: int) -> agent_pb2.WorkerReport:
    worker = _crashing()
    worker.consecutive_failures = failures
    return worker


ERROR = " (worker w1: exited with code 1 after 0.2s: not a loadable model)"


@pytest.mark.parametrize(
    ("cold", "workers", "worker_error", "message", "fatal"),
    [
        # A crash loop needs a user whatever the scaling mode: replicas, or waking from zero.
        (False, [_crashing()], ERROR, "keeps crashing (restart 3): exited with code 1", True),
        (True, [_crashing()], ERROR, "keeps crashing (restart 3): exited with code 1", True),
        # Fewer failures in a row may still recover: on its way, with the worker's error.
        (True, [_starting(CRASH_LOOP_RESTARTS - 1)], ERROR, "zero (cold start)" + ERROR, False),
        (False, [_starting(1)], ERROR, "of the current version yet" + ERROR, False),
        (True, [], "", "eu: waking from zero (cold start)", False),
        (False, [], "", "eu: no healthy worker of the current version yet", False),
    ],
)
def test_no_healthy_worker_is_failed_only_for_a_crash_loop(
    cold: bool,
    workers: list[agent_pb2.WorkerReport],
    worker_error: str,
    message: str,
    fatal: bool,
) -> None:
    problem, is_fatal = no_healthy_worker("eu", cold, workers, worker_error)
    assert message in problem and is_fatal == fatal


async def test_a_crash_looping_deployment_waking_from_zero_is_failed(
    cache: SnapshotCache, connect: Connect
) -> None:
    """min_replicas 0 and a broken artifact: the wake can never finish, so a user must act,
    exactly as with `replicas: 1`; the worker's own error says why."""
    waking = NetworkState(
        placements=STATE.placements,
        revisions=STATE.revisions,
        scales={PlacedTrackKey("production", "d", "", "eu"): RegionScale(desired=1, cold=True)},
    )
    registry = AgentRegistry()
    _agent(registry)
    session = registry.session("eu")
    assert session is not None
    registry.update_report(session, agent_pb2.AgentReport(workers=[_crashing()]))
    rebuilds = Rebuilds(cache, waking)
    status = LiveStatus(cache, registry, rebuilds)
    rebuilds.push(_gateway(healthy=False))
    await _sync_all(await connect("eu"), cache)

    def acked() -> bool:
        return status.deployment_status(_deployment()).regions[0].config_acked

    await eventually(acked, "config ACKed")
    result = status.deployment_status(_deployment())
    assert result.phase == "Failed", result.message
    assert "eu: worker w1 keeps crashing (restart 3)" in result.message
    assert "exited with code 1 after 0.2s: not a loadable model" in result.message


FAILED = FailedWake(
    CrashLoop("r1", "w1", "exited with code 1 after 0.2s: not a loadable model"), "f1", 0.0
)
LAST = "eu: the last cold start failed: worker w1 exited with code 1 after 0.2s: not a loadable"


@pytest.mark.parametrize(
    ("desired", "healthy", "cold", "workers", "failed", "message", "fatal"),
    [
        # At zero on purpose: Ready...
        (0, 0, True, [], None, "", False),
        # ...unless its last wake crash-looped: the worker is gone, the failure is not.
        (0, 0, True, [], FAILED, LAST, True),
        # Woken again by a request: still Failed until a worker serves.
        (1, 0, True, [], FAILED, LAST + " model; waking from zero again (cold start)", True),
        (1, 0, True, [_starting(1)], FAILED, "waking from zero again (cold start)" + ERROR, True),
        # That wake crash-loops too: its own worker says why.
        (1, 0, True, [_crashing("w2")], FAILED, "eu: worker w2 keeps crashing (restart 3)", True),
        # A worker of the current version serves: Ready.
        (1, 1, False, [], FAILED, "", False),
        (1, 1, False, [], None, "", False),
        (1, 0, True, [], None, "eu: waking from zero (cold start)", False),
    ],
)
def test_a_region_back_at_zero_after_its_wake_crash_looped_is_failed(
    desired: int,
    healthy: int,
    cold: bool,
    workers: list[agent_pb2.WorkerReport],
    failed: FailedWake | None,
    message: str,
    fatal: bool,
) -> None:
    worker_error = ERROR if workers and not healthy else ""
    problem, is_fatal = workers_verdict("eu", desired, healthy, cold, workers, worker_error, failed)
    assert (message in problem if message else problem == "") and is_fatal == fatal, problem


async def test_a_broken_scale_to_zero_deployment_stays_failed_back_at_zero(
    cache: SnapshotCache, connect: Connect
) -> None:
    """The autoscaler and status together, from the agent's reports: a worker that crash-loops
    while waking from zero; the region goes back to zero and the agent drops the worker; the
    deployment must still be Failed (it showed Ready, scaled to zero), with the worker's error."""
    clock = [100.0]
    scaler = Autoscaler(lambda: clock[0])
    settings = ScalingSettings(
        min_replicas=0, max_replicas=1, autoscaled=True, scale_to_zero_after_s=1
    )
    key = PlacedTrackKey("production", "d", "", "eu")
    registry = AgentRegistry()
    session = registry.connect(agent_pb2.AgentHello(region="eu", gateway_address="127.0.0.1:8080"))
    state = NetworkState(placements=STATE.placements, revisions=STATE.revisions)
    rebuilds = Rebuilds(cache, state)
    status = LiveStatus(cache, registry, rebuilds)

    def report(dt: float, *workers: agent_pb2.WorkerReport) -> resources_pb2.DeploymentStatus:
        clock[0] += dt
        agent = agent_pb2.AgentReport(workers=workers)
        registry.update_report(session, agent)
        signals = load_signals(agent, [TrackKey(*key[:3])], ClusterIndex())
        state.scales = scaler.update(
            [ScaleInput(key, settings, revision="r1", spec="f1")],
            {key: signals[key[:3]]},
            {},
            {"eu": RegionBudget()},
        )
        return status.deployment_status(_deployment())

    rebuilds.push(_gateway(healthy=False))
    await _sync_all(await connect("eu"), cache)
    report(0, _starting(1))
    await eventually(lambda: status.deployment_status(_deployment()).regions[0].config_acked, "ACK")
    crashing = report(0.5, _crashing())
    assert crashing.phase == "Failed" and "worker w1 keeps crashing" in crashing.message
    for _ in range(3):  # the worker keeps failing until the region goes back to zero
        report(0.5, _crashing())
    at_zero = report(0.5)  # the agent stopped the worker: nothing reported any more
    assert at_zero.regions[0].scaled_to_zero and at_zero.regions[0].desired_replicas == 0
    assert at_zero.phase == "Failed", at_zero.message
    assert at_zero.message == LAST + " model"
    assert report(30).phase == "Failed"  # a later look: nothing changed, still Failed


QUARANTINE = Quarantine(
    "f1", CDS, "7.5", "Invalid duration: Duration out-of-range: goo.gle/debugproto\n"
)


def test_a_quarantined_deployment_is_failed_with_envoys_text_and_where(
    cache: SnapshotCache,
) -> None:
    registry = AgentRegistry()
    _agent(registry)
    state = NetworkState(
        placements=STATE.placements,
        revisions=STATE.revisions,
        quarantined={("production", "d"): {"eu": QUARANTINE}},
    )
    result = LiveStatus(cache, registry, lambda: state).deployment_status(_deployment())
    assert result.phase == "Failed"
    assert result.message.startswith("eu: Envoy rejected clusters version 7.5: Invalid duration")
    assert "quarantined: left out of region eu's config" in result.message
    assert "Duration out-of-range" in result.regions[0].nack_error


def test_a_deployment_kept_at_its_accepted_form_says_so_and_why(
    cache: SnapshotCache,
) -> None:
    registry = AgentRegistry()
    _agent(registry)
    kept = replace(QUARANTINE, kept="v1")
    state = NetworkState(
        placements=STATE.placements,
        revisions=STATE.revisions,
        quarantined={("production", "d"): {"eu": kept}},
    )
    result = LiveStatus(cache, registry, lambda: state).deployment_status(_deployment())
    assert result.phase == "Failed"
    assert result.message.startswith(
        "eu: kept at its last accepted form (version v1); the new spec was rejected: Envoy "
        "rejected clusters version 7.5: Invalid duration"
    ), result.message
    assert "left out" not in result.message


async def test_a_nack_attributed_to_another_deployment_leaves_this_one_ready(
    cache: SnapshotCache, connect: Connect
) -> None:
    state = NetworkState(
        placements=STATE.placements,
        revisions=STATE.revisions,
        nack_blame={"eu": frozenset({("production", "other")})},
    )
    registry = AgentRegistry()
    _agent(registry)
    rebuilds = Rebuilds(cache, state)
    status = LiveStatus(cache, registry, rebuilds)
    rebuilds.push(_gateway(healthy=True))
    client = await connect("eu")
    await _sync_all(client, cache)
    await eventually(lambda: status.deployment_status(_deployment()).phase == "Ready", "Ready")

    rebuilds.push(_gateway(True, 2.0))
    response = await client.recv()
    while response.type_url != CDS:
        await client.ack(response)
        response = await client.recv()
    await client.nack(response, "cluster other.production.grpc: bad")
    await eventually(lambda: cache.node_status("eu").types[CDS].nack is not None, "NACK")

    result = status.deployment_status(_deployment())
    assert result.phase == "Ready" and not result.regions[0].nack_error, result.message
    rebuilds.base = NetworkState(placements=STATE.placements, revisions=STATE.revisions)
    assert status.deployment_status(_deployment()).phase == "Failed"  # unattributed: everyone


def test_status_says_which_generation_it_reflects(cache: SnapshotCache) -> None:
    """A client waiting for a phase (meshline wait) trusts only a status of the latest spec."""
    rebuilt = NetworkState(
        placements=STATE.placements,
        revisions=STATE.revisions,
        generations={("production", "d"): 3},
    )
    status = LiveStatus(cache, AgentRegistry(), lambda: rebuilt)
    assert status.deployment_status(_deployment()).observed_generation == 3
    never = LiveStatus(cache, AgentRegistry(), lambda: NetworkState())
    assert never.deployment_status(_deployment()).observed_generation == 0


@pytest.mark.parametrize(
    ("desired", "healthy", "cold", "message"),
    [
        # No room for the wanted worker (granted 0): Pending with the reason, never Ready.
        (0, 0, False, "eu: region 'eu' has 100 MiB free"),
        (0, 0, True, "eu: region 'eu' has 100 MiB free"),
        # Some serve: Ready (the reason stays on the region's pending_reason).
        (1, 1, False, ""),
        # A worker starting while a second one has no room: Pending with the room's reason.
        (1, 0, False, "eu: region 'eu' has 100 MiB free"),
    ],
)
def test_a_region_without_room_for_its_workers_is_pending_with_the_reason(
    desired: int, healthy: int, cold: bool, message: str
) -> None:
    pending = (
        "region 'eu' has 100 MiB free of its 1.0 GiB memory budget, version 'v1' needs 1.1 GiB"
    )
    problem, fatal = workers_verdict("eu", desired, healthy, cold, [], "", None, pending)
    assert (message in problem if message else problem == "") and not fatal, problem


def test_a_crash_loop_is_failed_even_when_room_is_short_too() -> None:
    pending = "region 'eu' has 100 MiB free of its 1.0 GiB memory budget"
    problem, fatal = workers_verdict("eu", 2, 0, False, [_crashing()], ERROR, None, pending)
    assert fatal and "keeps crashing" in problem, problem
    failed = FailedWake(CrashLoop("r1", "w1", "exited with code 1"), "spec", 0.0)
    problem, fatal = workers_verdict("eu", 0, 0, True, [], "", failed, pending)
    assert fatal and "the last cold start failed" in problem, problem
