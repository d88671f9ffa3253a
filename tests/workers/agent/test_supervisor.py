"""The agent's Supervisor with real worker processes (no control plane: it is driven directly).

Covers what the end-to-end tests cannot see precisely: crash backoff and its recorded reason,
make-before-break replacement, and that a draining worker is only stopped when released (or
when the control plane is reachable and the drain is overdue).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from meshline.v1 import agent_pb2
from tests.workers.agent.helpers import REMOTE_HOSTNAMES, agent_config, states, until, workload
from workers.agent.envoy_process import GatewayView, HostTraffic
from workers.agent.supervisor import Supervisor
from workers.agent.worker import Worker
from workers.demo import build_mlp

State = agent_pb2.WorkerState


async def test_crashing_worker_backs_off_and_says_why(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    missing = tmp_path / "gone.pt"
    supervisor.set_desired([workload(missing, "r1")])
    await until(lambda: any(w.restarts >= 2 for w in supervisor.workers.values()), "2 restarts")
    worker = next(iter(supervisor.workers.values()))
    assert str(missing) in worker.last_error and "exited with code 1" in worker.last_error
    assert worker.failures >= 2
    report = supervisor.report().workers[0]
    assert report.state != State.WORKER_STATE_HEALTHY and str(missing) in report.last_error
    # The wait grows with each consecutive failure (0.5 s, 1 s, 2 s, ... capped at 10 s).
    await until(lambda: not worker.running and worker.exit_noted, "the next exit")
    wait = worker.restart_at - time.monotonic()
    assert 0.5 * 2 ** (worker.failures - 2) < wait <= min(0.5 * 2 ** (worker.failures - 1), 10)


async def test_replacement_is_make_before_break_and_waits_for_release(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    model = build_mlp(tmp_path / "m.pt")
    supervisor.connected = lambda: False  # nobody can confirm the gateway stopped routing
    supervisor.set_desired([workload(model, "r1")])
    await until(lambda: states(supervisor) == [("r1", State.WORKER_STATE_HEALTHY)], "r1")
    old = next(iter(supervisor.workers.values()))

    supervisor.set_desired([workload(model, "r2")])
    # The old worker serves until the new one is healthy ...
    await until(lambda: ("r2", State.WORKER_STATE_HEALTHY) in states(supervisor), "r2 healthy")
    await until(lambda: ("r1", State.WORKER_STATE_DRAINING) in states(supervisor), "r1 draining")
    # ... and, draining, keeps running past max_drain_s while the control plane is unreachable.
    old.drain_started -= 60
    await supervisor._reconcile()
    assert old.running and old.worker_id in supervisor.workers

    supervisor.release([old.worker_id])  # the gateway ACKed a config without it
    await until(lambda: old.worker_id not in supervisor.workers and not old.running, "retired")
    assert states(supervisor) == [("r2", State.WORKER_STATE_HEALTHY)]


async def test_overdue_drain_is_forced_only_when_connected(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    model = build_mlp(tmp_path / "m.pt")
    supervisor.set_desired([workload(model, "r1")])
    await until(lambda: states(supervisor) == [("r1", State.WORKER_STATE_HEALTHY)], "r1")
    worker = next(iter(supervisor.workers.values()))
    supervisor.set_desired([])
    await until(lambda: worker.draining, "draining")
    worker.drain_started -= 60
    await until(lambda: not worker.running, "the overdue worker to stop")
    assert supervisor.workers == {}


def _by_track(sup: Supervisor) -> dict[str, list[tuple[str, str, int]]]:
    tracks: dict[str, list[tuple[str, str, int]]] = {}
    for w in sup.report().workers:
        tracks.setdefault(w.track, []).append((w.version, w.revision, w.state))
    return tracks


async def test_tracks_run_side_by_side_and_are_replaced_on_their_own(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    model = build_mlp(tmp_path / "m.pt")
    supervisor.connected = lambda: False  # drains end only by release
    main_v1 = workload(model, "r1", version="v1")
    leg = workload(model, "r-leg", track="V2_beta", version="V2_beta")
    supervisor.set_desired([main_v1, leg])
    healthy = State.WORKER_STATE_HEALTHY
    await until(
        lambda: (
            _by_track(supervisor)
            == {"": [("v1", "r1", healthy)], "V2_beta": [("V2_beta", "r-leg", healthy)]}
        ),
        "both tracks healthy",
    )
    main_worker = next(w for w in supervisor.workers.values() if not w.workload.track)
    leg_worker = next(w for w in supervisor.workers.values() if w.workload.track)
    # Ids stay unique and readable: the track shows, sanitized for [a-z0-9.-].
    assert main_worker.worker_id.startswith("t-d-") and "beta" not in main_worker.worker_id
    assert leg_worker.worker_id.startswith("t-d-v2-beta-")
    assert leg_worker.grpc_port != main_worker.grpc_port
    leg_pid = leg_worker.process.pid if leg_worker.process else None
    leg_restarts = leg_worker.restarts

    # A new version on the main track: make-before-break there, the leg is left alone.
    supervisor.set_desired([workload(model, "r3", version="v3"), leg])
    await until(
        lambda: ("v3", "r3", healthy) in _by_track(supervisor)[""] and main_worker.draining,
        "v3 healthy and v1 draining",
    )
    supervisor.release([main_worker.worker_id])
    await until(lambda: main_worker.worker_id not in supervisor.workers, "v1 retired")
    assert _by_track(supervisor) == {
        "": [("v3", "r3", healthy)],
        "V2_beta": [("V2_beta", "r-leg", healthy)],
    }
    assert supervisor.workers[leg_worker.worker_id] is leg_worker
    assert not leg_worker.draining and leg_worker.restarts == leg_restarts
    assert leg_worker.process is not None and leg_worker.process.pid == leg_pid

    # The leg leaves the desired state: only its worker drains.
    supervisor.set_desired([workload(model, "r3", version="v3")])
    await until(lambda: leg_worker.draining, "the leg draining")
    assert [w.draining for w in supervisor.workers.values() if not w.workload.track] == [False]


async def test_promoting_a_canary_moves_workers_between_tracks_without_restarts(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    """v1 main + v2 leg becomes v2 main + v1 leg: the same processes keep serving."""
    model = build_mlp(tmp_path / "m.pt")
    supervisor.connected = lambda: False
    v1_main = workload(model, "r1", version="v1")
    v2_leg = workload(model, "r2", track="v2", version="v2")
    supervisor.set_desired([v1_main, v2_leg])
    healthy = State.WORKER_STATE_HEALTHY
    await until(
        lambda: (
            _by_track(supervisor) == {"": [("v1", "r1", healthy)], "v2": [("v2", "r2", healthy)]}
        ),
        "both tracks healthy",
    )
    pids = {w.revision: w.process.pid for w in supervisor.workers.values() if w.process}

    supervisor.set_desired(
        [workload(model, "r2", version="v2"), workload(model, "r1", track="v1", version="v1")]
    )
    await until(
        lambda: (
            _by_track(supervisor) == {"": [("v2", "r2", healthy)], "v1": [("v1", "r1", healthy)]}
        ),
        "the tracks swapped",
    )
    assert len(supervisor.workers) == 2
    assert not any(w.draining for w in supervisor.workers.values())
    assert {w.revision: w.process.pid for w in supervisor.workers.values() if w.process} == pids


def _worker(sup: Supervisor, worker_id: str, grpc_port: int, http_port: int) -> Worker:
    worker = Worker(
        worker_id=worker_id,
        workload=workload(Path("m.pt"), "r1", track="v2", version="v2"),
        grpc_port=grpc_port,
        http_port=http_port,
        log_path=Path("unused.log"),
        host=sup.config.host,
        state=State.WORKER_STATE_HEALTHY,
    )
    sup.workers[worker_id] = worker
    return worker


async def _no_view() -> GatewayView | None:
    return None


def test_gateway_view_sets_inflight_and_reports_only_changes(tmp_path: Path) -> None:
    reports: list[int] = []
    sup = Supervisor(agent_config(tmp_path), on_change=lambda: reports.append(1))
    sup.gateway_view = None  # views are applied by hand here
    _worker(sup, "a", 9000, 9001)
    _worker(sup, "b", 9002, 9003)
    view = GatewayView(
        routable=frozenset({"127.0.0.1:9000", "127.0.0.1:9001", "127.0.0.1:9002"}),
        inflight={"127.0.0.1:9000": 2, "127.0.0.1:9001": 3, "127.0.0.1:9002": 1},
    )
    assert sup.apply_gateway_view(view) and len(reports) == 1
    sup.gateway_view = _no_view  # a gateway exists: serving needs its view
    report = {w.worker_id: w for w in sup.report().workers}
    assert (report["a"].inflight, report["a"].gateway_routable) == (5, True)
    # Only one of b's two ports is routable: b is not.
    assert (report["b"].inflight, report["b"].gateway_routable) == (1, False)
    assert (report["a"].version, report["a"].track) == ("v2", "v2")

    assert not sup.apply_gateway_view(view) and len(reports) == 1  # nothing changed, no report
    busier = GatewayView(view.routable, {**view.inflight, "127.0.0.1:9001": 4})
    assert sup.apply_gateway_view(busier) and len(reports) == 2
    assert {w.worker_id: w.inflight for w in sup.report().workers} == {"a": 6, "b": 1}
    # The admin API unreachable: nothing routable, nothing known in flight.
    assert sup.apply_gateway_view(None) and len(reports) == 3
    assert [(w.inflight, w.gateway_routable) for w in sup.report().workers] == [(0, False)] * 2


def test_traffic_leaving_the_region_counts_gateways_and_the_activator_not_workers(
    tmp_path: Path,
) -> None:
    """A worker retired at scale-to-zero stays in Envoy's counters for a moment: its requests
    must not read as new traffic going elsewhere (that woke the region again at once)."""
    sup = Supervisor(agent_config(tmp_path), on_change=lambda: None)
    sup.gateway_view = None
    sup.set_desired([], remote_hostnames=REMOTE_HOSTNAMES)
    cluster = "d.production.grpc"
    retired, gateway, activator = "127.0.0.1:9000", "127.0.0.1:7000", "127.0.0.1:7100"
    view = GatewayView(
        traffic={
            cluster: {
                retired: HostTraffic(active=0, total=40),  # no longer one of sup.workers
                gateway: HostTraffic(active=1, total=5),
                activator: HostTraffic(active=2, total=2),
            }
        },
        hostnames={retired: "eu-d-1a2b3c", gateway: "gateway.us", activator: "activator"},
    )
    sup.apply_gateway_view(view)
    forwarded = {c.cluster: c for c in sup.report().clusters}[cluster]
    assert (forwarded.requests, forwarded.inflight) == (7, 3)


def test_clusters_name_the_hostnames_envoy_routes_to_as_envoy_shows_them(tmp_path: Path) -> None:
    """A placement change lets the old region go only once every gateway reaches a new one:
    the report names the routable hosts by the EDS hostnames Envoy shows, not only how many,
    and the agent does not read regions out of them (the control plane named them)."""
    sup = Supervisor(agent_config(tmp_path), on_change=lambda: None)
    sup.gateway_view = None
    sup.set_desired([], remote_hostnames=REMOTE_HOSTNAMES)
    cluster = "d.production.grpc"
    worker, eu, us, bare = "127.0.0.1:9000", "127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"
    view = GatewayView(
        # us: its health check failed; bare: a host EDS gave no hostname.
        routable_by_cluster={cluster: frozenset({worker, eu, bare})},
        hostnames={worker: "ap-d-1a2b3c", eu: "gateway.eu", us: "gateway.us"},
    )
    sup.apply_gateway_view(view)
    health = {c.cluster: c for c in sup.report().clusters}[cluster]
    assert (health.routable_hosts, list(health.routable_hostnames)) == (
        3,
        ["ap-d-1a2b3c", "gateway.eu"],
    )


async def test_inflight_changes_are_reported_within_a_probe_interval(tmp_path: Path) -> None:
    model = build_mlp(tmp_path / "m.pt")
    inflight: dict[str, int] = {}
    reads: list[float] = []
    changes: list[float] = []

    async def view() -> GatewayView:
        reads.append(time.monotonic())
        routable = frozenset(
            a for w in sup.workers.values() for a in (w.grpc_address, w.http_address)
        )
        return GatewayView(routable, dict(inflight))

    sup = Supervisor(agent_config(tmp_path), on_change=lambda: changes.append(time.monotonic()))
    sup.gateway_view = view
    task = asyncio.create_task(sup.run())
    try:
        sup.set_desired([workload(model, "r1")])
        await until(lambda: [w.gateway_routable for w in sup.report().workers] == [True], "serving")
        worker = next(iter(sup.workers.values()))
        await asyncio.sleep(0.5)
        quiet_since = time.monotonic()
        await asyncio.sleep(0.6)  # three probe intervals with nothing new: no report
        assert not [t for t in changes if t > quiet_since]
        assert len([t for t in reads if t > quiet_since]) >= 2  # the gateway is still read
        inflight[worker.http_address] = 7
        changed_at = time.monotonic()
        # Read every probe interval (0.2 s here): reported well within a second.
        await until(lambda: any(t > changed_at for t in changes), "a report", timeout_s=1.0)
        assert sup.report().workers[0].inflight == 7
    finally:
        await sup.stop()
        task.cancel()


async def test_a_workload_that_cannot_start_says_why_and_spares_the_others(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    model = build_mlp(tmp_path / "m.pt")
    broken = workload(model, "r1", track="odd")
    broken.runtime = "onnx"  # no such worker (the API refuses it; an old agent might not)
    supervisor.set_desired([broken, workload(model, "r1")])
    await until(lambda: ("r1", State.WORKER_STATE_HEALTHY) in states(supervisor), "the good worker")
    await until(lambda: any(w.last_error for w in supervisor.report().workers), "a reason")
    (bad,) = [w for w in supervisor.report().workers if w.track == "odd"]
    assert bad.state == State.WORKER_STATE_UNHEALTHY
    assert "cannot start the worker: runtime 'onnx' has no worker process" in bad.last_error


async def test_the_report_has_the_machine_and_what_each_worker_uses(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    machine = supervisor.report().machine
    assert 0 < machine.memory_available_bytes <= machine.memory_total_bytes
    assert machine.cpus >= 1
    supervisor.set_desired([workload(build_mlp(tmp_path / "m.pt"), "r1")])
    await until(lambda: states(supervisor) == [("r1", State.WORKER_STATE_HEALTHY)], "r1 healthy")
    # Measured on its own cadence: soon after the worker runs.
    await until(lambda: supervisor.report().workers[0].memory_bytes > 0, "its memory")
    (worker,) = supervisor.workers.values()
    assert worker.pid is not None
    # An interpreter with torch and a model loaded: tens of MiB at the very least.
    assert supervisor.report().workers[0].memory_bytes > 20 << 20
