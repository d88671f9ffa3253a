"""The autoscaler over time with a fake clock (time is an input here, not the thing tested):
scale-up on a step, down after it, zero after the idle time, cold starts recorded, a wake
that crash-looped remembered."""

from __future__ import annotations

from dataclasses import replace

from controlplane.autoscale import Autoscaler, CrashLoop, LoadSignal
from controlplane.autoscale.admission import RegionBudget
from controlplane.autoscale.autoscaler import NEVER_SERVED_GRACE_S, ScaleInput
from controlplane.policy.scaling import NEVER, ScalingSettings
from meshline.keys import PlacedTrackKey

KEY = PlacedTrackKey("production", "fraud", "", "eu")
SETTINGS = ScalingSettings(
    min_replicas=0,
    max_replicas=4,
    autoscaled=True,
    target_concurrency=2,
    scale_to_zero_after_s=5,
    stable_window_s=4,
    panic_window_s=1,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _step(
    scaler: Autoscaler,
    clock: Clock,
    dt: float,
    signal: LoadSignal,
    held: int = 0,
    capacity: int = 0,
    settings: ScalingSettings = SETTINGS,
    revision: str = "r1",
    spec: str = "f1",
) -> int:
    clock.now += dt
    out = scaler.update(
        [ScaleInput(KEY, settings, revision=revision, spec=spec)],
        {KEY: signal},
        {KEY: held} if held else {},
        {"eu": RegionBudget(max_replicas=capacity)},
    )
    return out[KEY].desired


def serving(concurrency: float = 0, requests: int = 0, workers: int = 1) -> LoadSignal:
    return LoadSignal(
        concurrency, {"worker:w1": requests}, True, workers, serving_revisions=frozenset({"r1"})
    )


def test_a_load_step_scales_up_within_the_panic_window_and_down_after_the_stable_one() -> None:
    clock = Clock()
    scaler = Autoscaler(clock)
    settings = replace(SETTINGS, scale_to_zero_after_s=60)
    assert _step(scaler, clock, 0, serving(), settings=settings) == 1
    first = _step(scaler, clock, 0.5, serving(8, requests=1), settings=settings)
    assert first == 4  # 8 in flight / 2 per worker, at the first report of the step
    assert _step(scaler, clock, 0.5, serving(8, requests=2), settings=settings) == 4
    # The load ends: replicas stay for a while (no flapping on one quiet report)...
    history = [_step(scaler, clock, 0.5, serving(0, requests=3), settings=settings)]
    assert history[0] == 4
    # ...and come down step by step, to min 1 (never to zero here: not idle for 60 s).
    history += [
        _step(scaler, clock, 0.5, serving(0, requests=3), settings=settings) for _ in range(20)
    ]
    assert history == sorted(history, reverse=True)
    assert history[-1] == 1


def test_idle_region_goes_to_zero_and_a_held_request_wakes_it_as_a_cold_start() -> None:
    clock = Clock()
    scaler = Autoscaler(clock)
    _step(scaler, clock, 0, serving(requests=1))
    assert _step(scaler, clock, 4.9, serving(requests=1)) == 1  # not idle long enough
    assert _step(scaler, clock, 0.2, serving(requests=1)) == 0
    assert scaler.decisions[KEY].cold
    # A request is held: wake at once, cold until a worker serves.
    idle = LoadSignal(0, {}, False, 0)
    assert _step(scaler, clock, 60, idle, held=1) == 1
    assert scaler.decisions[KEY].cold
    assert _step(scaler, clock, 1.5, LoadSignal(1, {"worker:w2": 0}, False, 1), held=1) == 1
    _step(scaler, clock, 0.5, LoadSignal(0, {"worker:w2": 1}, True, 1))
    assert not scaler.decisions[KEY].cold
    totals = scaler.ledger.of("production", "fraud", "eu")
    assert totals.count == 1
    assert abs(totals.last_s - 2.0) < 1e-9


def test_a_region_that_never_served_does_not_go_back_to_zero() -> None:
    """Idle time counts from the first worker serving, not from the wake-up decision."""
    clock = Clock()
    scaler = Autoscaler(clock)
    starting = LoadSignal(0, {}, False, 1)
    for _ in range(20):
        assert _step(scaler, clock, 1.0, starting) == 1


def test_traffic_served_elsewhere_counts_as_activity() -> None:
    clock = Clock()
    scaler = Autoscaler(clock)
    _step(scaler, clock, 0, serving(requests=1))
    for i in range(10):  # requests entering here, forwarded to a warm region
        signal = LoadSignal(0, {"worker:w1": 1, "cluster:fraud.production.grpc": i}, True, 1)
        assert _step(scaler, clock, 1.0, signal) == 1


def test_capacity_caps_what_is_above_the_floors() -> None:
    clock = Clock()
    scaler = Autoscaler(clock)
    _step(scaler, clock, 0, serving(), capacity=2)
    assert _step(scaler, clock, 0.5, serving(20, requests=1), capacity=2) == 2
    assert "at capacity (max_replicas 2)" in scaler.decisions[KEY].problem


def test_next_check_while_load_decays_and_before_the_idle_deadline() -> None:
    clock = Clock()
    scaler = Autoscaler(clock)
    _step(scaler, clock, 0, serving(4, requests=1))
    assert scaler.next_check_s() == 0.5  # the windows still hold load
    for _ in range(9):  # 4.5 s: the stable window is empty, idle is not over yet
        _step(scaler, clock, 0.5, serving(0, requests=1))
    assert scaler.decisions[KEY].desired == 1
    wait = scaler.next_check_s()
    assert wait is not None and 0 < wait <= SETTINGS.scale_to_zero_after_s


def test_deactivated_runs_nothing_and_is_not_cold() -> None:
    clock = Clock()
    scaler = Autoscaler(clock)
    out = scaler.update([ScaleInput(KEY, SETTINGS, deactivated=True)], {}, {}, {})
    assert out[KEY].desired == 0 and not out[KEY].cold


def test_a_new_deployment_starts_at_zero_and_stays_there_until_invoked() -> None:
    """Nothing runs until invoked; also what a restarted control plane finds where a region
    was scaled to zero. The region is cold (its requests are held by the activator)."""
    clock = Clock()
    scaler = Autoscaler(clock)
    nothing = LoadSignal(0, {}, False, 0)
    assert _step(scaler, clock, 0, nothing) == 0
    assert scaler.decisions[KEY].cold
    for _ in range(10):
        assert _step(scaler, clock, 30, nothing) == 0
    assert scaler.next_check_s() is None  # nothing to re-decide without input
    assert _step(scaler, clock, 1, nothing, held=1) == 1  # the first request wakes it
    assert scaler.decisions[KEY].cold


def test_initial_replicas_start_warm_and_that_start_is_no_cold_start() -> None:
    clock = Clock()
    scaler = Autoscaler(clock)
    settings = replace(SETTINGS, initial_replicas=2)
    nothing = LoadSignal(0, {}, False, 0)
    assert _step(scaler, clock, 0, nothing, settings=settings) == 2
    assert scaler.decisions[KEY].cold  # waking: requests wait in the activator
    assert _step(scaler, clock, 1, serving(), settings=settings) == 2
    assert not scaler.decisions[KEY].cold
    # Nobody waited for that first start (a deployment just applied): no cold start.
    assert scaler.ledger.of("production", "fraud", "eu").count == 0
    # Idle: down to zero after scale_to_zero_after, like any other wake.
    for _ in range(12):
        _step(scaler, clock, 0.5, serving(), settings=settings)
    assert scaler.decisions[KEY].desired == 0


def test_a_worker_found_after_a_restart_is_kept() -> None:
    clock = Clock()
    scaler = Autoscaler(clock)
    assert _step(scaler, clock, 0, serving()) == 1
    assert not scaler.decisions[KEY].cold


def test_a_request_held_during_a_first_start_makes_it_a_cold_start() -> None:
    clock = Clock()
    scaler = Autoscaler(clock)
    settings = replace(SETTINGS, initial_replicas=1)
    nothing = LoadSignal(0, {}, False, 0)
    _step(scaler, clock, 0, nothing, settings=settings)
    _step(scaler, clock, 0.5, LoadSignal(0, {}, False, 1), held=1, settings=settings)
    _step(scaler, clock, 0.5, serving(), settings=settings)
    totals = scaler.ledger.of("production", "fraud", "eu")
    assert totals.count == 1 and abs(totals.last_s - 1.0) < 1e-9


def test_never_going_back_to_zero_still_starts_at_zero() -> None:
    """min_replicas 0 with scale_to_zero_after 0 (never): nothing runs until the first
    request; from then on the region keeps a worker however idle."""
    clock = Clock()
    scaler = Autoscaler(clock)
    settings = replace(SETTINGS, scale_to_zero_after_s=NEVER)
    nothing = LoadSignal(0, {}, False, 0)
    assert _step(scaler, clock, 0, nothing, settings=settings) == 0
    assert _step(scaler, clock, 1, nothing, held=1, settings=settings) == 1
    for _ in range(20):
        assert _step(scaler, clock, 3600, serving(), settings=settings) == 1
    assert scaler.next_check_s() is None


def test_a_worker_that_never_comes_up_lets_the_region_go_back_to_zero() -> None:
    clock = Clock()
    scaler = Autoscaler(clock)
    crashing = LoadSignal(0, {}, False, 1)
    grace = (
        max(SETTINGS.cold_start_timeout_s, NEVER_SERVED_GRACE_S) + SETTINGS.scale_to_zero_after_s
    )
    assert _step(scaler, clock, 0, crashing) == 1
    assert _step(scaler, clock, grace - 1, crashing) == 1  # a slow start is not cut short
    assert _step(scaler, clock, 2, crashing) == 0


ERROR = "exited with code 1 after 0.2s: not a TorchScript archive"


def crash_loop(worker: str = "w1", revision: str = "r1") -> LoadSignal:
    """A worker of `revision` that failed CRASH_LOOP_RESTARTS starts in a row."""
    return LoadSignal(0, {}, False, 1, ERROR, crash_loops=(CrashLoop(revision, worker, ERROR),))


def test_a_crash_looping_wake_goes_back_to_zero_and_stays_failed_until_a_wake_serves() -> None:
    clock = Clock()
    scaler = Autoscaler(clock)
    assert _step(scaler, clock, 0, LoadSignal(0, {}, False, 1)) == 1
    assert scaler.decisions[KEY].failed is None  # starting: nothing failed yet
    assert _step(scaler, clock, 2, crash_loop()) == 1
    failed = scaler.decisions[KEY].failed
    assert failed is not None and failed.crash == CrashLoop("r1", "w1", ERROR)
    # The wake has failed, it is not slow: no grace, idle counts from the crash loop.
    assert _step(scaler, clock, SETTINGS.scale_to_zero_after_s - 1, crash_loop()) == 1
    assert _step(scaler, clock, 1.5, crash_loop()) == 0
    assert 1.5 + SETTINGS.scale_to_zero_after_s < NEVER_SERVED_GRACE_S
    # The worker is gone: the region is at zero, and still remembers why.
    gone = LoadSignal(0, {}, False, 0)
    assert _step(scaler, clock, 10, gone) == 0
    assert scaler.decisions[KEY].cold and scaler.decisions[KEY].failed == failed
    # A request still wakes it (the user may have fixed something outside the spec)...
    assert _step(scaler, clock, 10, gone, held=1) == 1
    assert scaler.decisions[KEY].failed == failed
    # ...and when that wake crash-loops too, its worker is the one remembered.
    assert _step(scaler, clock, 2, crash_loop("w2"), held=1) == 1
    again = scaler.decisions[KEY].failed
    assert again is not None and again.crash.worker_id == "w2"
    # A later wake that serves forgets it.
    _step(scaler, clock, 1, serving())
    assert scaler.decisions[KEY].failed is None


def test_a_changed_revision_or_spec_forgets_a_failed_wake() -> None:
    for change in ({"revision": "r2"}, {"spec": "f2"}):
        clock = Clock()
        scaler = Autoscaler(clock)
        _step(scaler, clock, 0, crash_loop())
        assert _step(scaler, clock, 10, LoadSignal()) == 0
        assert scaler.decisions[KEY].failed is not None
        assert _step(scaler, clock, 1, LoadSignal(), **change) == 0
        assert scaler.decisions[KEY].failed is None, change


def test_only_regions_that_scale_to_zero_remember_a_failed_wake() -> None:
    """With workers always running, the crash-looping worker itself is reported."""
    clock = Clock()
    scaler = Autoscaler(clock)
    fixed = replace(SETTINGS, min_replicas=1)
    assert _step(scaler, clock, 0, crash_loop(), settings=fixed) == 1
    assert scaler.decisions[KEY].failed is None


def test_a_wake_that_needs_room_stops_the_least_recently_used_idle_track_first() -> None:
    """Memory admission through the autoscaler: the stopped track goes to zero (cold: its
    next request is held and wakes it again) and stays there without traffic; the woken one
    starts once the stopped worker's memory is free."""
    clock = Clock()
    scaler = Autoscaler(clock)
    gib = 2**30
    idle_key, woken_key = KEY, KEY._replace(name="other")
    settings = replace(SETTINGS, scale_to_zero_after_s=600)

    def update(held: int, free: int, idle_running: bool) -> dict[str, int]:
        idle_signal = (
            LoadSignal(0, {"worker:w1": 1}, True, 1, worker_memory=(gib // 4,))
            if idle_running
            else LoadSignal()
        )
        out = scaler.update(
            [
                ScaleInput(idle_key, settings, footprint_bytes=gib),
                ScaleInput(woken_key, settings, footprint_bytes=gib),
            ],
            {idle_key: idle_signal},
            {woken_key: held} if held else {},
            {"eu": RegionBudget(memory_free_bytes=free, memory_budget_bytes=gib)},
        )
        return {k.name: v.desired for k, v in out.items()}

    update(held=0, free=0, idle_running=True)  # fraud serving, found running
    for _ in range(10):  # idle for a stable window (4 s), far from scale_to_zero_after
        clock.now += 0.5
        assert update(held=0, free=0, idle_running=True) == {"fraud": 1, "other": 0}
    clock.now += 0.5
    assert update(held=1, free=0, idle_running=True) == {"fraud": 0, "other": 0}
    assert scaler.decisions[idle_key].cold
    assert "stopping idle workers of 'fraud'" in scaler.decisions[woken_key].problem
    clock.now += 0.5  # fraud's worker is gone: its memory is free
    assert update(held=1, free=gib, idle_running=False) == {"fraud": 0, "other": 1}
    for _ in range(10):
        clock.now += 0.5
        assert update(held=0, free=0, idle_running=False)["fraud"] == 0


def test_one_eviction_at_a_time_while_the_stopped_worker_is_not_reported_draining_yet() -> None:
    """Until the agent reports the stopped track's worker draining, its memory counts as being
    freed: later passes on the same report stop no other idle track."""
    clock = Clock()
    scaler = Autoscaler(clock)
    gib = 2**30
    settings = replace(SETTINGS, scale_to_zero_after_s=600)
    idle = [KEY._replace(name=n) for n in ("a", "c", "d")]
    woken = KEY._replace(name="b")
    running = LoadSignal(0, {"worker:w": 1}, True, 1, worker_memory=(gib,))

    def update(held: int) -> dict[str, int]:
        out = scaler.update(
            [ScaleInput(k, settings, footprint_bytes=gib) for k in (*idle, woken)],
            {k: running for k in idle},  # the same report: every idle worker still serving
            {woken: held} if held else {},
            {"eu": RegionBudget(memory_free_bytes=0, memory_budget_bytes=4 * gib)},
        )
        return {k.name: v.desired for k, v in out.items()}

    update(held=0)
    clock.now += 5  # idle for longer than the stable window
    update(held=0)
    clock.now += 0.5
    first = update(held=1)
    assert sorted(n for n in "acd" if first[n] == 0) == ["a"]  # one stopped (key order: LRU tie)
    for _ in range(5):  # rebuilds before the agent's next report
        clock.now += 0.02
        again = update(held=1)
        assert (again["c"], again["d"], again["b"]) == (1, 1, 0)


def test_a_track_answering_a_steady_trickle_is_not_idle() -> None:
    """A request counts in the pass its counter rose; between two requests the track is not
    idle (nothing in flight at report time is not enough)."""
    clock = Clock()
    scaler = Autoscaler(clock)
    gib = 2**30
    settings = replace(SETTINGS, scale_to_zero_after_s=600)
    busy, woken = KEY, KEY._replace(name="other")
    for i in range(30):  # one request a second, reports every 0.5 s
        clock.now += 0.5
        signal = LoadSignal(0, {"worker:w1": i // 2}, True, 1, worker_memory=(gib,))
        out = scaler.update(
            [
                ScaleInput(busy, settings, footprint_bytes=gib),
                ScaleInput(woken, settings, footprint_bytes=gib),
            ],
            {busy: signal},
            {woken: 1} if i > 10 else {},
            {"eu": RegionBudget(memory_free_bytes=0, memory_budget_bytes=gib)},
        )
        assert out[busy].desired == 1, i
