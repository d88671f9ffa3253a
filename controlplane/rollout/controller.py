"""The rollout state machine of every deployment, driven by the reconciler's rebuilds.

A rollout starts when a deployment's version differs from the one its traffic is on (the
*stable* version). `immediate`: the new version replaces the old make-before-break (the
agents' own replacement); it succeeds once every region serves it. `canary`: the new version
runs beside the stable one on its own track and gets each step's weight of the requests; a step
starts when the canary serves in every region it is placed in, lasts its duration, and is
judged against the stable version over that stretch (and continuously once it has enough
requests): worse beyond the thresholds rolls back at once, with the figures recorded.

A deployment that still names a rolled-back (or aborted) version stays on the stable one. It
rolls that version out again on `rollout retry` (a new rollout, `retry_of` the old), or once it
named another version in between (`rollout undo`): the old rollout is then marked
`hold_released`. The history lives in the store; the step timer in memory (a restarted control
plane restarts the current step).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from controlplane.autoscale.failures import crash_looping
from controlplane.ir.build import is_serving
from controlplane.ir.index import ClusterIndex
from controlplane.policy.settings import Track
from controlplane.rollout.analysis import TrafficTotals, judge, p99_ms, total
from controlplane.rollout.settings import CANARY, rollout_settings
from controlplane.store import Store
from controlplane.store.rollouts import latest_rollouts, list_rollouts, save_rollout
from meshline.keys import DeploymentKey, TrackKey
from meshline.phases import ENDED_WITHOUT_TARGET, ROLLING, RolloutPhase
from meshline.v1 import agent_pb2
from meshline.v1.resources_pb2 import Deployment, Rollout, StepAnalysis

log = logging.getLogger(__name__)

_ENDED_WORDS = {RolloutPhase.ROLLED_BACK: "rolled back", RolloutPhase.ABORTED: "aborted"}
State = agent_pb2.WorkerState
CHECK_INTERVAL_S = 0.5
PROGRESS_DEADLINE_S = 300.0
# A new-version worker that failed CRASH_LOOP_RESTARTS starts in a row, never serving (a model
# file that cannot load, a crash at start), will not fix itself: roll back now, not at the
# deadline. The same rule makes status Failed (one constant, controlplane/autoscale/failures.py).


class RolloutError(Exception):
    """A control action that does not apply (nothing to pause, nothing to undo)."""


@dataclass(frozen=True)
class RolloutView:
    """What the rest of the flow needs: the tracks to run instead of the policy's (None = the
    policy's own), the version stable traffic goes to, and the rollout to show."""

    tracks: tuple[Track, ...] | None
    serving_version: str
    rollout: Rollout | None


@dataclass
class _Step:
    """When the current step started, and each region's counters then (differences are taken
    per region, so one Envoy restarting resets only its own counters)."""

    started: float
    canary: dict[str, TrafficTotals]
    stable: dict[str, TrafficTotals]


def _since(now: Mapping[str, TrafficTotals], start: Mapping[str, TrafficTotals]) -> TrafficTotals:
    return total(totals.since(start.get(region, TrafficTotals())) for region, totals in now.items())


def _holding(rec: Rollout | None) -> bool:
    """The last rollout ended without its version, and nothing released that hold yet."""
    return rec is not None and rec.phase in ENDED_WITHOUT_TARGET and not rec.hold_released


def holds_stable(rec: Rollout | None, target: str) -> bool:
    """The deployment names the version its last rollout ended without and has named no other
    since: it stays on the stable version (a rollback is not undone by the next rebuild)."""
    return _holding(rec) and rec is not None and rec.to_version == target


def releases_hold(rec: Rollout | None, target: str) -> bool:
    """The deployment names another version than the one its last rollout ended without (e.g.
    `rollout undo` set the stable one back): naming that version again is a new rollout."""
    return _holding(rec) and rec is not None and rec.to_version != target


def retry_refusal(name: str, rec: Rollout | None, target: str) -> str:
    """Why `rollout retry` does not apply to the deployment ("" when it does): only a version
    the deployment still names, after its rollout was rolled back or aborted, is retried."""
    why = f"deployment '{name}' has no rolled-back version to retry"
    if rec is None:
        return f"{why}: it has had no rollout"
    if rec.phase in ROLLING:
        return f"{why}: its rollout {rec.from_version} → {rec.to_version} is {rec.phase.lower()}"
    if rec.phase not in ENDED_WITHOUT_TARGET:
        return (
            f"{why}: its last rollout ({rec.from_version} → {rec.to_version}) {rec.phase.lower()}"
        )
    if rec.to_version != target:
        return (
            f"{why}: version '{rec.to_version}' was {_ENDED_WORDS[RolloutPhase(rec.phase)]}, "
            f"but the deployment now names '{target}' (set version '{rec.to_version}' and "
            "apply to roll it out again)"
        )
    if rec.hold_released:
        return f"{why}: version '{target}' is being rolled out again"
    return ""


@dataclass
class RolloutController:
    store: Store
    clock: Callable[[], float] = time.monotonic
    # Called after an API action changed a rollout (the reconciler's trigger), so the data
    # plane follows at once rather than at the next agent report.
    on_change: Callable[[], None] = lambda: None
    _latest: dict[DeploymentKey, Rollout] = field(default_factory=dict)
    _stable: dict[DeploymentKey, str] = field(default_factory=dict)
    _steps: dict[DeploymentKey, _Step] = field(default_factory=dict)
    # Since when each rollout has waited for the new version to serve everywhere.
    _waiting: dict[DeploymentKey, float] = field(default_factory=dict)
    views: dict[DeploymentKey, RolloutView] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._latest = latest_rollouts(self.store)

    # -- the reconciler's call --------------------------------------------------------------

    def update(
        self,
        deployments: Sequence[Deployment],
        placements: Mapping[DeploymentKey, Sequence[str]],
        reports: Mapping[str, agent_pb2.AgentReport],
        clusters: ClusterIndex,
    ) -> dict[DeploymentKey, RolloutView]:
        """`clusters`: the names the last IR gave each track's clusters (reports use them)."""
        views = {}
        for dep in deployments:
            key = DeploymentKey(dep.spec.environment, dep.metadata.name)
            try:
                views[key] = self._update_one(dep, placements.get(key, ()), reports, clusters)
            except Exception:  # one deployment's rollout must not stop the others'
                log.exception("rollout of %s failed to update", key)
                if key in self.views:
                    views[key] = self.views[key]  # keep its last tracks, not the spec's
        present = {DeploymentKey(d.spec.environment, d.metadata.name) for d in deployments}
        gone = set(self._stable) - present
        for key in gone:
            self._stable.pop(key, None)
            self._steps.pop(key, None)
            self._latest.pop(key, None)
            self._waiting.pop(key, None)
        self.views = views
        return views

    def _update_one(
        self,
        dep: Deployment,
        regions: Sequence[str],
        reports: Mapping[str, agent_pb2.AgentReport],
        clusters: ClusterIndex,
    ) -> RolloutView:
        key = DeploymentKey(dep.spec.environment, dep.metadata.name)
        target = dep.spec.version
        rec = self._latest.get(key)
        stable = self._stable.setdefault(key, _stable_of(rec) if rec else target)
        if rec is not None and rec.phase in ROLLING and rec.to_version != target:
            rec = self._finish(rec, RolloutPhase.ABORTED, f"superseded by version '{target}'")
            stable = rec.from_version
        strategy = rollout_settings(dep.spec).strategy
        if rec is not None and rec.phase in ROLLING and rec.strategy != strategy:
            # Its steps are gone with the old strategy: start over from the stable version.
            rec = self._finish(
                rec, RolloutPhase.ABORTED, f"rollout strategy changed to '{strategy}'"
            )
            stable = rec.from_version
            rec = self._start(dep, stable, target)
        if rec is not None and holds_stable(rec, target):
            # The deployment still names the version that was rolled back: stay on the stable
            # one until it names another (`rollout undo`) or `rollout retry`.
            return RolloutView((Track("", rec.from_version, 100),), rec.from_version, rec)
        if rec is not None and releases_hold(rec, target):
            rec = self._release(rec)
        if (rec is None or rec.phase not in ROLLING) and target != stable:
            rec = self._start(dep, stable, target)
        if rec is None or rec.phase not in ROLLING:
            self._stable[key] = target
            return RolloutView(None, target, rec)
        if rec.strategy != CANARY:
            return self._immediate(key, rec, regions, reports)
        return self._canary(dep, key, rec, regions, reports, clusters)

    def _immediate(
        self,
        key: DeploymentKey,
        rec: Rollout,
        regions: Sequence[str],
        reports: Mapping[str, agent_pb2.AgentReport],
    ) -> RolloutView:
        # Every placed region's agent must confirm (one without workers, scaled to zero, has
        # nothing to replace); without a report nothing is confirmed.
        if (
            regions
            and all(r in reports for r in regions)
            and all(
                _serving(reports.get(r), key, "", rec.to_version)
                and not _still_running(reports.get(r), key, rec.from_version)
                for r in regions
                if _runs_here(reports.get(r), key)
            )
        ):
            self._waiting.pop(key, None)
            rec = self._finish(rec, RolloutPhase.SUCCEEDED, "every region serves the new version")
            return RolloutView(None, rec.to_version, rec)
        if (why := _crash_looping(rec, reports)) or self._past_deadline(key, rec):
            self._waiting.pop(key, None)
            rec = self._finish(rec, RolloutPhase.ROLLED_BACK, why or _never_served(rec, reports))
            return RolloutView((Track("", rec.from_version, 100),), rec.from_version, rec)
        # The old version serves until the new one replaced it everywhere.
        return RolloutView(None, rec.from_version, rec)

    def _past_deadline(self, key: DeploymentKey, rec: Rollout) -> bool:
        """The new version has had PROGRESS_DEADLINE_S to serve everywhere (Kubernetes'
        progressDeadlineSeconds): a version that cannot start must not keep trying forever."""
        since = self._waiting.setdefault(key, self.clock())
        if self.clock() - since < PROGRESS_DEADLINE_S:
            return False
        self._waiting.pop(key, None)
        return True

    def _canary(
        self,
        dep: Deployment,
        key: DeploymentKey,
        rec: Rollout,
        regions: Sequence[str],
        reports: Mapping[str, agent_pb2.AgentReport],
        clusters: ClusterIndex,
    ) -> RolloutView:
        settings = rollout_settings(dep.spec)
        stable, target = rec.from_version, rec.to_version
        weight, duration = settings.steps[min(rec.step, len(settings.steps) - 1)]
        # The stable version keeps the deployment's own track (its workers stay where they
        # are); the canary runs on a track of its own, named by its version, and gets its share
        # only once it serves in every region (make-before-break).
        ready = (
            bool(regions)
            and all(r in reports for r in regions)
            and all(
                _serving(report, key, target, target) and _serving(report, key, "", stable)
                for report in (reports.get(r) for r in regions)
                if _runs_here(report, key)
            )
        )
        view = RolloutView(_canary_tracks(stable, target, weight if ready else 0), stable, rec)
        if rec.phase == RolloutPhase.PAUSED:
            self._steps.pop(key, None)  # resuming restarts the step on fresh figures
            return view
        if not ready:
            self._steps.pop(key, None)  # the step starts again once the canary serves again
            if (why := _crash_looping(rec, reports)) or self._past_deadline(key, rec):
                self._waiting.pop(key, None)
                rec = self._finish(
                    rec, RolloutPhase.ROLLED_BACK, why or _never_served(rec, reports)
                )
                return RolloutView((Track("", stable, 100),), stable, rec)
            return view
        self._waiting.pop(key, None)
        canary_now = _traffic(reports, key, target, clusters)
        stable_now = _traffic(reports, key, "", clusters)
        step = self._steps.get(key)
        now = self.clock()
        if step is None:
            self._steps[key] = _Step(now, canary_now, stable_now)
            return view
        canary, stable_window = _since(canary_now, step.canary), _since(stable_now, step.stable)
        verdict = judge(canary, stable_window, settings)
        # A step ends once it has lasted its duration and has enough canary requests to be
        # judged (an idle canary holds its step; `rollout abort` or more traffic moves it).
        over = now - step.started >= duration and verdict.judged
        if not verdict.failed and not over:
            return view
        analysis = StepAnalysis(
            step=rec.step,
            weight=weight,
            canary_requests=canary.requests,
            canary_errors=canary.errors,
            canary_p99_ms=p99_ms(canary),
            stable_requests=stable_window.requests,
            stable_errors=stable_window.errors,
            stable_p99_ms=p99_ms(stable_window),
            verdict=verdict.text,
        )
        rec = _copy(rec)
        rec.analyses.append(analysis)
        self._steps.pop(key, None)
        if verdict.failed:
            rec = self._finish(
                rec, RolloutPhase.ROLLED_BACK, f"step {rec.step + 1} ({weight}%) {verdict.text}"
            )
            return RolloutView((Track("", stable, 100),), stable, rec)
        rec.step += 1
        if rec.step >= len(settings.steps):
            rec = self._finish(
                rec, RolloutPhase.SUCCEEDED, f"all {len(settings.steps)} steps passed"
            )
            return RolloutView(None, target, rec)
        rec.weight = settings.steps[rec.step][0]
        rec = self._save(rec)
        return RolloutView(_canary_tracks(stable, target, rec.weight), stable, rec)

    def next_check_s(self) -> float | None:
        """While a rollout progresses its step timer and analysis need a look every so often."""
        active = any(r.phase == RolloutPhase.PROGRESSING for r in self._latest.values())
        return CHECK_INTERVAL_S if active else None

    # -- API actions --------------------------------------------------------------------------

    def history(self, environment: str, name: str) -> list[Rollout]:
        return list_rollouts(self.store, environment, name)

    def control(self, dep: Deployment, action: str) -> Rollout:
        """pause / resume / abort the current rollout; `undo` is done by the API (it changes
        the deployment's version), after `undo_target` said which."""
        key = DeploymentKey(dep.spec.environment, dep.metadata.name)
        rec = self._latest.get(key)
        if rec is None or rec.phase not in ROLLING:
            state = f"its last one is {rec.phase}" if rec else "it has none"
            raise RolloutError(
                f"deployment '{dep.metadata.name}' has no rollout in progress to {action} ({state})"
            )
        if action in ("pause", "resume") and rec.strategy != CANARY:
            raise RolloutError(
                f"the rollout of '{dep.metadata.name}' is immediate: it has no steps to "
                f"{action} (abort it to go back to '{rec.from_version}')"
            )
        if action == "pause":
            if rec.phase == RolloutPhase.PAUSED:
                return rec
            rec = _copy(rec)
            rec.phase = RolloutPhase.PAUSED
            self._waiting.pop(key, None)
            return self._save(rec)
        if action == "resume":
            if rec.phase == RolloutPhase.PROGRESSING:
                return rec
            rec = _copy(rec)
            rec.phase = RolloutPhase.PROGRESSING
            return self._save(rec)
        if action == "abort":
            self._steps.pop(key, None)
            rec = self._finish(rec, RolloutPhase.ABORTED, "aborted by `meshline rollout abort`")
            self.on_change()
            return rec
        raise RolloutError(f"unknown rollout action '{action}' (pause, resume, abort, undo)")

    def undo_target(self, dep: Deployment) -> str:
        """The version before the deployment's last rollout."""
        key = DeploymentKey(dep.spec.environment, dep.metadata.name)
        rec = self._latest.get(key)
        if rec is None:
            raise RolloutError(f"deployment '{dep.metadata.name}' has no rollout to undo")
        if rec.phase in ROLLING:
            raise RolloutError(
                f"deployment '{dep.metadata.name}' has a rollout in progress "
                f"({rec.from_version} → {rec.to_version}); abort it instead"
            )
        # After a success: back to the version before it. After a rollback: the deployment
        # still names the refused version, and setting the stable one ends the refusal.
        return rec.from_version

    def undone(self, dep: Deployment) -> None:
        """`rollout undo` stored `dep` (its version set back): a hold on the version it named
        ends now, not at the next rebuild, so re-applying that version rolls it out."""
        rec = self._latest.get(DeploymentKey(dep.spec.environment, dep.metadata.name))
        if rec is not None and releases_hold(rec, dep.spec.version):
            self._release(rec)

    def retry(self, dep: Deployment) -> Rollout:
        """A new rollout of the version the deployment names, after its last rollout of it was
        rolled back or aborted (like `kubectl argo rollouts retry`): from the first step, on
        fresh figures."""
        key = DeploymentKey(dep.spec.environment, dep.metadata.name)
        rec = self._latest.get(key)
        why = retry_refusal(dep.metadata.name, rec, dep.spec.version)
        if why or rec is None:
            raise RolloutError(why)
        self._steps.pop(key, None)
        self._waiting.pop(key, None)
        new = self._start(dep, rec.from_version, rec.to_version, retry_of=rec.id)
        self.on_change()
        return new

    # -- records --------------------------------------------------------------------------------

    def _start(self, dep: Deployment, stable: str, target: str, retry_of: int = 0) -> Rollout:
        settings = rollout_settings(dep.spec)
        rec = Rollout(
            environment=dep.spec.environment,
            deployment=dep.metadata.name,
            from_version=stable,
            to_version=target,
            strategy=settings.strategy,
            phase=RolloutPhase.PROGRESSING,
            weight=settings.steps[0][0] if settings.strategy == CANARY else 100,
            retry_of=retry_of,
        )
        log.info(
            "rollout of %s/%s: %s → %s (%s)%s",
            rec.environment,
            rec.deployment,
            stable,
            target,
            settings.strategy,
            f", retrying #{retry_of}" if retry_of else "",
        )
        return self._save(rec)

    def _release(self, rec: Rollout) -> Rollout:
        released = _copy(rec)
        released.hold_released = True
        log.info(
            "rollout of %s/%s: version '%s' no longer held back (another version was named)",
            rec.environment,
            rec.deployment,
            rec.to_version,
        )
        return self._save(released)

    def _finish(self, rec: Rollout, phase: str, reason: str) -> Rollout:
        done = _copy(rec)
        done.phase = phase
        done.reason = reason
        if phase == RolloutPhase.SUCCEEDED:
            done.weight = 100
        key = DeploymentKey(rec.environment, rec.deployment)
        self._stable[key] = rec.to_version if phase == RolloutPhase.SUCCEEDED else rec.from_version
        log.info("rollout of %s/%s %s: %s", rec.environment, rec.deployment, phase, reason)
        return self._save(done)

    def _save(self, rec: Rollout) -> Rollout:
        saved = save_rollout(self.store, rec)
        self._latest[DeploymentKey(saved.environment, saved.deployment)] = saved
        return saved


def _crash_looping(rec: Rollout, reports: Mapping[str, agent_pb2.AgentReport]) -> str:
    """Why the new version cannot start, when one of its workers failed CRASH_LOOP_RESTARTS
    starts in a row; "" otherwise."""
    for region in sorted(reports):
        for w in reports[region].workers:
            if (w.environment, w.deployment, w.version) == (
                rec.environment,
                rec.deployment,
                rec.to_version,
            ) and crash_looping(w):
                return (
                    f"version '{rec.to_version}' failed to start {w.consecutive_failures} times "
                    f"in a row in region {region} (worker {w.worker_id}: {w.last_error})"
                )
    return ""


def _never_served(rec: Rollout, reports: Mapping[str, agent_pb2.AgentReport]) -> str:
    why = next(
        (
            f" (worker {w.worker_id}: {w.last_error})"
            for report in reports.values()
            for w in report.workers
            if (w.environment, w.deployment, w.version)
            == (rec.environment, rec.deployment, rec.to_version)
            and w.last_error
        ),
        "",
    )
    return (
        f"version '{rec.to_version}' did not serve in every region within "
        f"{PROGRESS_DEADLINE_S:g} s{why}"
    )


def _canary_tracks(stable: str, target: str, share: int) -> tuple[Track, ...]:
    return (Track("", stable, 100 - share), Track(target, target, share))


def _copy(rec: Rollout) -> Rollout:
    out = Rollout()
    out.CopyFrom(rec)
    return out


def _stable_of(rec: Rollout) -> str:
    return rec.to_version if rec.phase == RolloutPhase.SUCCEEDED else rec.from_version


def _workers(
    report: agent_pb2.AgentReport | None, key: DeploymentKey
) -> list[agent_pb2.WorkerReport]:
    if report is None:
        return []
    return [w for w in report.workers if DeploymentKey(w.environment, w.deployment) == key]


def _runs_here(report: agent_pb2.AgentReport | None, key: DeploymentKey) -> bool:
    """The region has workers of the deployment (one scaled to zero has nothing to replace)."""
    return bool(_workers(report, key))


def _serving(
    report: agent_pb2.AgentReport | None, key: DeploymentKey, track: str, version: str
) -> bool:
    return any(
        w.track == track and w.version == version and is_serving(w) for w in _workers(report, key)
    )


def _still_running(report: agent_pb2.AgentReport | None, key: DeploymentKey, version: str) -> bool:
    return any(
        w.version == version and w.state != State.WORKER_STATE_DRAINING
        for w in _workers(report, key)
    )


def _traffic(
    reports: Mapping[str, agent_pb2.AgentReport],
    key: DeploymentKey,
    track: str,
    clusters: ClusterIndex,
) -> dict[str, TrafficTotals]:
    """One track's traffic at each region's gateway (a request counts once, where it
    entered)."""
    wanted = set(clusters.clients(TrackKey(*key, track)))
    return {
        region: total(
            TrafficTotals(t.requests, t.errors, tuple((b.upper_ms, b.count) for b in t.latency))
            for t in report.traffic
            if t.cluster in wanted
        )
        for region, report in reports.items()
    }
