"""The rollout state machine on a real store, with agent reports as its input and a fake clock
(time is an input here): canary steps, make-before-break weights, analysis, rollback, the
history, pause/resume/abort, undo and retry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.autoscale.failures import CRASH_LOOP_RESTARTS
from controlplane.ir.index import ClusterIndex
from controlplane.rollout import RolloutController, RolloutError
from controlplane.rollout.controller import (
    PROGRESS_DEADLINE_S,
    holds_stable,
    releases_hold,
    retry_refusal,
)
from controlplane.store import Store
from controlplane.store.rollouts import list_rollouts
from meshline.keys import TrackKey
from meshline.v1 import agent_pb2
from meshline.v1.resources_pb2 import CanaryStep, Deployment, Rollout

S = agent_pb2.WorkerState
KEY = ("production", "fraud")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store.db") as s:
        yield s


def deployment(version: str, strategy: str = "canary", steps: int = 2) -> Deployment:
    dep = Deployment()
    dep.metadata.name = "fraud"
    dep.spec.environment = "production"
    dep.spec.model = "m"
    dep.spec.version = version
    dep.spec.rollout.strategy = strategy
    if strategy == "canary":
        dep.spec.rollout.steps.extend(
            CanaryStep(weight=w, duration=10) for w in (25, 50, 75)[:steps]
        )
        dep.spec.rollout.analysis.min_requests = 10
    return dep


def worker(track: str, version: str, wid: str, serving: bool = True) -> agent_pb2.WorkerReport:
    return agent_pb2.WorkerReport(
        worker_id=wid,
        deployment="fraud",
        environment="production",
        track=track,
        version=version,
        state=S.WORKER_STATE_HEALTHY if serving else S.WORKER_STATE_STARTING,
        gateway_routable=serving,
    )


def traffic(
    cluster: str, requests: int, errors: int = 0, slow: bool = False
) -> agent_pb2.ClusterTraffic:
    fast = [(1.0, requests), (5.0, requests), (100.0, requests)]
    slow_buckets = [(1.0, 0), (5.0, 0), (100.0, requests)]
    return agent_pb2.ClusterTraffic(
        cluster=cluster,
        requests=requests,
        errors=errors,
        latency=[
            agent_pb2.LatencyBucket(upper_ms=b, count=c)
            for b, c in (slow_buckets if slow else fast)
        ],
    )


def report(
    *workers: agent_pb2.WorkerReport,
    canary: tuple[int, int] = (0, 0),
    stable: tuple[int, int] = (0, 0),
    slow: bool = False,
) -> dict[str, agent_pb2.AgentReport]:
    return {
        "eu": agent_pb2.AgentReport(
            workers=list(workers),
            traffic=[
                traffic("fraud.production@v2.grpc", *canary, slow=slow),
                traffic("fraud.production.grpc", *stable),
            ],
        )
    }


PLACED = {KEY: ("eu",)}
# The tracks whose clusters the reports name: the deployment's own and its canary.
CLUSTERS = ClusterIndex.of_tracks([TrackKey(*KEY, ""), TrackKey(*KEY, "v2")])


def test_first_sight_is_no_rollout_and_a_version_change_starts_one(store: Store) -> None:
    rollouts = RolloutController(store, Clock())
    view = rollouts.update([deployment("v1")], PLACED, report(worker("", "v1", "a")), CLUSTERS)[KEY]
    assert view.tracks is None and view.rollout is None and view.serving_version == "v1"
    view = rollouts.update([deployment("v2")], PLACED, report(worker("", "v1", "a")), CLUSTERS)[KEY]
    assert view.rollout is not None and view.rollout.phase == "Progressing"
    assert (view.rollout.from_version, view.rollout.to_version) == ("v1", "v2")
    # The canary starts at weight 0 until it serves: no request meets a cold canary.
    assert [(t.name, t.version, t.weight) for t in view.tracks or ()] == [
        ("", "v1", 100),
        ("v2", "v2", 0),
    ]


def test_a_good_canary_passes_every_step_and_succeeds(store: Store) -> None:
    clock = Clock()
    rollouts = RolloutController(store, clock)
    rollouts.update([deployment("v1")], PLACED, report(worker("", "v1", "a")), CLUSTERS)
    both = (worker("v2", "v2", "b"), worker("", "v1", "a"))
    rollouts.update([deployment("v2")], PLACED, report(*both), CLUSTERS)
    view = rollouts.update(
        [deployment("v2")], PLACED, report(*both, canary=(0, 0), stable=(0, 0)), CLUSTERS
    )[KEY]
    assert [(t.name, t.weight) for t in view.tracks or ()] == [("", 75), ("v2", 25)]
    clock.now += 11
    view = rollouts.update(
        [deployment("v2")], PLACED, report(*both, canary=(30, 0), stable=(90, 0)), CLUSTERS
    )[KEY]
    assert view.rollout is not None and view.rollout.step == 1 and view.rollout.weight == 50
    assert view.rollout.analyses[0].verdict.startswith("passed")
    rollouts.update(
        [deployment("v2")], PLACED, report(*both, canary=(30, 0), stable=(90, 0)), CLUSTERS
    )
    clock.now += 11
    view = rollouts.update(
        [deployment("v2")], PLACED, report(*both, canary=(80, 0), stable=(140, 0)), CLUSTERS
    )[KEY]
    assert view.rollout is not None and view.rollout.phase == "Succeeded"
    assert view.tracks is None and view.serving_version == "v2"
    assert [r.phase for r in list_rollouts(store, *KEY)] == ["Succeeded"]


def test_a_canary_that_fails_requests_rolls_back_at_once(store: Store) -> None:
    clock = Clock()
    rollouts = RolloutController(store, clock)
    rollouts.update([deployment("v1")], PLACED, report(worker("", "v1", "a")), CLUSTERS)
    both = (worker("v2", "v2", "b"), worker("", "v1", "a"))
    rollouts.update([deployment("v2")], PLACED, report(*both), CLUSTERS)
    rollouts.update([deployment("v2")], PLACED, report(*both), CLUSTERS)
    clock.now += 1  # well inside the step: enough requests, and clearly worse
    view = rollouts.update(
        [deployment("v2")], PLACED, report(*both, canary=(20, 8), stable=(60, 0)), CLUSTERS
    )[KEY]
    rollout = view.rollout
    assert rollout is not None and rollout.phase == "RolledBack"
    assert "canary error rate 40.0% vs stable 0.0%" in rollout.reason
    assert [(t.name, t.version, t.weight) for t in view.tracks or ()] == [("", "v1", 100)]
    # Still naming v2: stays on v1, no new rollout.
    view = rollouts.update([deployment("v2")], PLACED, report(*both), CLUSTERS)[KEY]
    assert view.serving_version == "v1" and len(list_rollouts(store, *KEY)) == 1
    # Undo points back at v1; setting it ends the refusal without a rollout.
    assert rollouts.undo_target(deployment("v2")) == "v1"
    view = rollouts.update([deployment("v1")], PLACED, report(worker("", "v1", "a")), CLUSTERS)[KEY]
    assert view.tracks is None and view.serving_version == "v1"


def test_a_much_slower_canary_rolls_back(store: Store) -> None:
    clock = Clock()
    rollouts = RolloutController(store, clock)
    rollouts.update([deployment("v1")], PLACED, report(worker("", "v1", "a")), CLUSTERS)
    both = (worker("v2", "v2", "b"), worker("", "v1", "a"))
    rollouts.update([deployment("v2")], PLACED, report(*both), CLUSTERS)
    rollouts.update([deployment("v2")], PLACED, report(*both), CLUSTERS)
    clock.now += 2
    view = rollouts.update(
        [deployment("v2")],
        PLACED,
        report(*both, canary=(20, 0), stable=(60, 0), slow=True),
        CLUSTERS,
    )[KEY]
    assert view.rollout is not None and view.rollout.phase == "RolledBack"
    # Every canary request in (5, 100] ms, every stable one under 1 ms (interpolated p99s).
    assert "p99 latency 57.3 ms vs stable 0.8 ms (limit 10 ms" in view.rollout.reason


def test_pause_resume_abort_and_errors(store: Store) -> None:
    rollouts = RolloutController(store, Clock())
    rollouts.update([deployment("v1")], PLACED, report(worker("", "v1", "a")), CLUSTERS)
    with pytest.raises(RolloutError, match="has no rollout in progress to pause"):
        rollouts.control(deployment("v1"), "pause")
    rollouts.update([deployment("v2")], PLACED, report(worker("", "v1", "a")), CLUSTERS)
    assert rollouts.control(deployment("v2"), "pause").phase == "Paused"
    assert rollouts.control(deployment("v2"), "resume").phase == "Progressing"
    with pytest.raises(RolloutError, match="in progress"):
        rollouts.undo_target(deployment("v2"))
    aborted = rollouts.control(deployment("v2"), "abort")
    assert aborted.phase == "Aborted"
    view = rollouts.update([deployment("v2")], PLACED, report(worker("", "v1", "a")), CLUSTERS)[KEY]
    assert view.serving_version == "v1"


def test_immediate_succeeds_once_every_region_serves_only_the_new_version(store: Store) -> None:
    rollouts = RolloutController(store, Clock())
    dep = deployment("v1", strategy="immediate")
    rollouts.update([dep], PLACED, report(worker("", "v1", "a")), CLUSTERS)
    dep2 = deployment("v2", strategy="immediate")
    view = rollouts.update(
        [dep2], PLACED, report(worker("", "v1", "a"), worker("", "v2", "b")), CLUSTERS
    )[KEY]
    assert view.rollout is not None and view.rollout.phase == "Progressing" and view.tracks is None
    view = rollouts.update([dep2], PLACED, report(worker("", "v2", "b")), CLUSTERS)[KEY]
    assert view.rollout is not None and view.rollout.phase == "Succeeded"


def test_history_survives_a_restart(store: Store) -> None:
    rollouts = RolloutController(store, Clock())
    rollouts.update([deployment("v1")], PLACED, report(worker("", "v1", "a")), CLUSTERS)
    rollouts.update([deployment("v2")], PLACED, report(worker("", "v1", "a")), CLUSTERS)
    again = RolloutController(store, Clock())
    view = again.update([deployment("v2")], PLACED, report(worker("", "v1", "a")), CLUSTERS)[KEY]
    assert view.rollout is not None and view.rollout.phase == "Progressing"
    assert len(list_rollouts(store, *KEY)) == 1


def test_a_version_that_never_serves_is_rolled_back_after_the_deadline(store: Store) -> None:
    clock = Clock()
    rollouts = RolloutController(store, clock)
    rollouts.update([deployment("v1")], PLACED, report(worker("", "v1", "a")), CLUSTERS)
    broken = worker("v2", "v2", "b", serving=False)
    broken.last_error = "exited with code 1 after 0.3s: bad model file"
    rollouts.update([deployment("v2")], PLACED, report(broken, worker("", "v1", "a")), CLUSTERS)
    clock.now += PROGRESS_DEADLINE_S + 1
    view = rollouts.update(
        [deployment("v2")], PLACED, report(broken, worker("", "v1", "a")), CLUSTERS
    )[KEY]
    assert view.rollout is not None and view.rollout.phase == "RolledBack"
    assert "did not serve in every region within 300 s" in view.rollout.reason
    assert "bad model file" in view.rollout.reason
    assert view.serving_version == "v1"


@pytest.mark.parametrize("strategy", ["immediate", "canary"])
def test_a_new_version_that_keeps_crashing_is_rolled_back_before_the_deadline(
    store: Store, strategy: str
) -> None:
    clock = Clock()
    rollouts = RolloutController(store, clock)
    stable = worker("", "v1", "a")
    rollouts.update([deployment("v1", strategy)], PLACED, report(stable), CLUSTERS)
    track = "v2" if strategy == "canary" else ""
    broken = worker(track, "v2", "b", serving=False)
    broken.last_error = "did not start (0.1s): not a loadable TorchScript archive"
    broken.consecutive_failures = CRASH_LOOP_RESTARTS - 1
    view = rollouts.update([deployment("v2", strategy)], PLACED, report(broken, stable), CLUSTERS)[
        KEY
    ]
    assert view.rollout is not None and view.rollout.phase == "Progressing"  # may recover yet
    broken.consecutive_failures = CRASH_LOOP_RESTARTS
    clock.now += 5  # far before the progress deadline
    view = rollouts.update([deployment("v2", strategy)], PLACED, report(broken, stable), CLUSTERS)[
        KEY
    ]
    assert view.rollout is not None and view.rollout.phase == "RolledBack"
    assert "version 'v2' failed to start 3 times in a row in region eu" in view.rollout.reason
    assert "not a loadable TorchScript archive" in view.rollout.reason
    assert view.serving_version == "v1"


def _rolled_back(rollouts: RolloutController, clock: Clock) -> None:
    """v1 serves; a canary of v2 fails its first step and is rolled back."""
    rollouts.update([deployment("v1")], PLACED, report(worker("", "v1", "a")), CLUSTERS)
    both = (worker("v2", "v2", "b"), worker("", "v1", "a"))
    rollouts.update([deployment("v2")], PLACED, report(*both), CLUSTERS)
    rollouts.update([deployment("v2")], PLACED, report(*both), CLUSTERS)
    clock.now += 1
    view = rollouts.update(
        [deployment("v2")], PLACED, report(*both, canary=(20, 8), stable=(60, 0)), CLUSTERS
    )[KEY]
    assert view.rollout is not None and view.rollout.phase == "RolledBack"


def _passes_every_step(rollouts: RolloutController, clock: Clock) -> None:
    """Drive a canary of v2 (two steps) to success on healthy figures."""
    both = (worker("v2", "v2", "c"), worker("", "v1", "a"))
    rollouts.update([deployment("v2")], PLACED, report(*both), CLUSTERS)
    for canary, stable in (((0, 0), (0, 0)), ((30, 0), (90, 0)), ((30, 0), (90, 0))):
        rollouts.update(
            [deployment("v2")], PLACED, report(*both, canary=canary, stable=stable), CLUSTERS
        )
        clock.now += 11
    view = rollouts.update(
        [deployment("v2")], PLACED, report(*both, canary=(80, 0), stable=(140, 0)), CLUSTERS
    )[KEY]
    assert view.rollout is not None and view.rollout.phase == "Succeeded", view.rollout
    assert view.tracks is None and view.serving_version == "v2"


def _ended(phase: str, to: str = "v2", released: bool = False) -> Rollout:
    return Rollout(id=7, from_version="v1", to_version=to, phase=phase, hold_released=released)


@pytest.mark.parametrize(
    ("rec", "target", "held", "released", "refusal"),
    [
        (None, "v1", False, False, "it has had no rollout"),
        (_ended("Progressing"), "v2", False, False, "its rollout v1 → v2 is progressing"),
        (_ended("Succeeded"), "v2", False, False, "its last rollout (v1 → v2) succeeded"),
        # Still naming the refused version: held on v1; retry applies.
        (_ended("RolledBack"), "v2", True, False, ""),
        (_ended("Aborted"), "v2", True, False, ""),
        # Named another version (undo to v1, or any other): the hold ends; retry does not apply.
        (_ended("RolledBack"), "v1", False, True, "now names 'v1' (set version 'v2'"),
        (_ended("Aborted"), "v3", False, True, "version 'v2' was aborted"),
        # Released, and naming it again: a new rollout, nothing held or to retry.
        (_ended("RolledBack", released=True), "v2", False, False, "being rolled out again"),
        (_ended("RolledBack", released=True), "v1", False, False, "now names 'v1'"),
    ],
)
def test_hold_release_and_retry_decisions(
    rec: Rollout | None, target: str, held: bool, released: bool, refusal: str
) -> None:
    assert holds_stable(rec, target) == held
    assert releases_hold(rec, target) == released
    why = retry_refusal("fraud", rec, target)
    if refusal:
        assert why.startswith("deployment 'fraud' has no rolled-back version to retry: ")
        assert refusal in why, why
    else:
        assert why == ""


def test_retry_rolls_a_rolled_back_canary_out_again_until_it_serves(store: Store) -> None:
    clock = Clock()
    rollouts = RolloutController(store, clock)
    _rolled_back(rollouts, clock)
    triggered: list[bool] = []
    rollouts.on_change = lambda: triggered.append(True)
    retried = rollouts.retry(deployment("v2"))
    assert (retried.phase, retried.from_version, retried.to_version) == ("Progressing", "v1", "v2")
    assert retried.retry_of == list_rollouts(store, *KEY)[1].id and retried.step == 0
    assert triggered == [True]  # the reconciler rebuilds at once
    # The history keeps both; a restarted control plane goes on with the retry.
    assert [r.phase for r in list_rollouts(store, *KEY)] == ["Progressing", "RolledBack"]
    rollouts = RolloutController(store, clock)
    view = rollouts.update([deployment("v2")], PLACED, report(worker("", "v1", "a")), CLUSTERS)[KEY]
    assert view.rollout is not None and view.rollout.id == retried.id
    assert [(t.name, t.version, t.weight) for t in view.tracks or ()] == [
        ("", "v1", 100),
        ("v2", "v2", 0),
    ]
    _passes_every_step(rollouts, clock)
    assert [r.phase for r in list_rollouts(store, *KEY)] == ["Succeeded", "RolledBack"]
    with pytest.raises(RolloutError, match="its last rollout \\(v1 → v2\\) succeeded"):
        rollouts.retry(deployment("v2"))


def test_retry_refuses_when_nothing_is_rolled_back(store: Store) -> None:
    clock = Clock()
    rollouts = RolloutController(store, clock)
    with pytest.raises(RolloutError, match="'fraud' has no rolled-back version to retry"):
        rollouts.retry(deployment("v1"))
    _rolled_back(rollouts, clock)
    rollouts.update([deployment("v1")], PLACED, report(worker("", "v1", "a")), CLUSTERS)  # undone
    with pytest.raises(RolloutError, match="the deployment now names 'v1'"):
        rollouts.retry(deployment("v1"))
    assert len(list_rollouts(store, *KEY)) == 1  # nothing started


@pytest.mark.parametrize("undo", ["api", "rebuild"])
def test_reapplying_a_rolled_back_version_after_undo_rolls_it_out(store: Store, undo: str) -> None:
    """`rollout undo` names the stable version: that ends the hold, and it stays ended across
    a restart, so naming the refused version again is a new rollout."""
    clock = Clock()
    rollouts = RolloutController(store, clock)
    _rolled_back(rollouts, clock)
    if undo == "api":
        rollouts.undone(deployment("v1"))  # the servicer's call, right after storing v1
    else:
        rollouts.update([deployment("v1")], PLACED, report(worker("", "v1", "a")), CLUSTERS)
    assert list_rollouts(store, *KEY)[0].hold_released
    rollouts = RolloutController(store, clock)  # a restart in between
    view = rollouts.update([deployment("v1")], PLACED, report(worker("", "v1", "a")), CLUSTERS)[KEY]
    assert view.tracks is None and view.serving_version == "v1"
    view = rollouts.update([deployment("v2")], PLACED, report(worker("", "v1", "a")), CLUSTERS)[KEY]
    assert view.rollout is not None and view.rollout.phase == "Progressing"
    assert (view.rollout.from_version, view.rollout.to_version) == ("v1", "v2")
    assert view.rollout.retry_of == 0
    _passes_every_step(rollouts, clock)
    assert [r.phase for r in list_rollouts(store, *KEY)] == ["Succeeded", "RolledBack"]
