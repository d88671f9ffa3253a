"""Desired workers per (deployment track, region), and which regions are cold.

Called on every rebuild with the agents' latest reports and the activator's held requests.
A region is *cold* for a track while it has zero workers on purpose (scaled to zero) or is
waking from zero; only then does the activator sit behind its workers in Envoy. A cold start
ends, and is recorded, when the region's own Envoy routes to one of the new workers; only a wake
that a request waited for or traffic asked for is one (not a new deployment's first start).
A wake whose worker crash-loops is remembered (`failures.py`) after the region went back to
zero, so status stays Failed without the worker's report.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from controlplane.autoscale.admission import Demand, RegionBudget, admit
from controlplane.autoscale.cold_starts import ColdStart, ColdStartLedger
from controlplane.autoscale.decide import desired_replicas
from controlplane.autoscale.failures import FailedWake, remembered_failure
from controlplane.autoscale.signals import LoadSignal
from controlplane.autoscale.window import LoadWindow
from controlplane.policy.scaling import ScalingSettings
from meshline.keys import PlacedTrackKey

# Re-decide this often while a window still holds load (means decay with no new reports).
REEVALUATE_S = 0.5
# How long a track stopped to make room counts as being freed before its agent reports it
# draining (a lost report must not hold the room forever).
EVICTION_REPORT_S = 30.0
# How long a woken region may take to first serve before idleness counts (the cold-start
# timeout when that is longer): a worker that never comes up does not pin a region forever.
# A worker in a crash loop ends that wait at once: that wake has failed, it is not slow.
NEVER_SERVED_GRACE_S = 60.0


@dataclass(frozen=True)
class RegionScale:
    desired: int
    # Zero workers on purpose or waking from zero: requests may be held by the activator.
    cold: bool = False
    # Why the region cannot wake (e.g. no capacity left), for the activator's answer.
    problem: str = ""
    # Its last wake crash-looped (kept at zero, once the worker is gone): a user must act.
    failed: FailedWake | None = None


@dataclass(frozen=True)
class ScaleInput:
    key: PlacedTrackKey
    settings: ScalingSettings
    deactivated: bool = False
    # The worker revision the track runs, and the deployment's configuration fingerprint: a
    # failed wake is remembered while both stay the same.
    revision: str = ""
    spec: str = ""
    # What one more worker of the track will use (its version's footprint), and the version.
    footprint_bytes: int = 0
    version: str = ""
    # Its workers are models in shared worker processes: they do not count as processes.
    packed: bool = False


@dataclass
class _Track:
    window: LoadWindow
    desired: int
    last_active: float
    counters: dict[str, int] = field(default_factory=dict)
    waking_since: float | None = None
    # A request waited or traffic came while waking: only then is the wake a cold start that
    # someone paid for (a newly applied or re-activated deployment's first start is not).
    wake_demanded: bool = False
    # Since when a worker has been serving without a break; idle time counts only from then,
    # so a region never goes back to zero before its worker even came up.
    serving_since: float | None = None
    # When the track was created or last woke from zero.
    started: float = 0.0
    # Recent wants: replicas only come down once a whole stable window wanted fewer.
    wants: deque[tuple[float, int]] = field(default_factory=deque)
    # The last wake that crash-looped, while nothing has changed since (scale-to-zero only).
    failed: FailedWake | None = None
    # Since when it has wanted more workers than it runs (admission serves the longest first).
    wanting_since: float | None = None

    def held_want(self, now: float, want: int, window_s: float) -> int:
        """`want`, or more while the last stable window wanted more (scale-down delay).
        Zero (idle for scale_to_zero_after) is taken at once: nothing ran meanwhile."""
        self.wants.append((now, want))
        while self.wants and self.wants[0][0] < now - window_s:
            self.wants.popleft()
        if want == 0:
            self.wants.clear()
            return 0
        return max(w for _, w in self.wants)

    def idle_s(self, now: float, settings: ScalingSettings) -> float:
        if self.serving_since is not None:
            return now - max(self.last_active, self.serving_since)
        if self.failed is not None and self.failed.since >= self.started:
            # This wake crash-looped: nothing to wait for, idle counts from then.
            return max(0.0, now - max(self.last_active, self.failed.since))
        # Never served since it woke (starting, or failing but not a crash loop yet): idle
        # counts only after a grace period, so a slow start is not cut short but a broken one
        # gives up.
        grace = max(settings.cold_start_timeout_s, NEVER_SERVED_GRACE_S)
        return max(0.0, now - max(self.last_active, self.started) - grace)


class Autoscaler:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        ledger: ColdStartLedger | None = None,
    ) -> None:
        self._clock = clock
        self.ledger = ledger or ColdStartLedger()
        self._tracks: dict[PlacedTrackKey, _Track] = {}
        self._settings: dict[PlacedTrackKey, ScalingSettings] = {}
        self.decisions: dict[PlacedTrackKey, RegionScale] = {}
        # Tracks stopped to make room whose agent has not reported them draining yet: what
        # they hold is on its way out, so nothing more is stopped for it (bytes, since).
        self._evicting: dict[PlacedTrackKey, tuple[int, float]] = {}

    def update(
        self,
        inputs: Iterable[ScaleInput],
        signals: Mapping[PlacedTrackKey, LoadSignal],
        held: Mapping[PlacedTrackKey, int],
        capacity: Mapping[str, RegionBudget],
    ) -> dict[PlacedTrackKey, RegionScale]:
        """Desired workers for every key, within what each region has room for."""
        now = self._clock()
        demands: list[Demand] = []
        active: dict[PlacedTrackKey, bool] = {}
        seen = set()
        for item in inputs:
            key, settings = item.key, item.settings
            seen.add(key)
            self._settings[key] = settings
            signal = signals.get(key, LoadSignal())
            memory = signal.planned_memory(item.footprint_bytes)
            if item.deactivated:
                demands.append(Demand(key, 0, 0, signal.workers, item.footprint_bytes, memory))
                self._tracks.pop(key, None)
                continue
            track = self._tracks.get(key)
            waiting = held.get(key, 0)
            if track is None:
                track = self._tracks[key] = _new_track(settings, signal, now)
            track.failed = (
                remembered_failure(
                    track.failed,
                    item.revision,
                    item.spec,
                    signal.crash_loops,
                    signal.serving_revisions,
                    now,
                )
                if settings.scales_to_zero
                else None
            )
            concurrency = max(signal.concurrency, float(waiting))
            track.window.add(now, concurrency)
            active[key] = bool(concurrency > 0 or waiting or _rose(track.counters, signal.counters))
            if active[key]:
                track.last_active = now
                if track.waking_since is not None:
                    track.wake_demanded = True
            track.counters = dict(signal.counters)
            if not signal.serving:
                track.serving_since = None
            elif track.serving_since is None:
                track.serving_since = now
            want = desired_replicas(
                settings,
                panic_concurrency=track.window.mean(now, settings.panic_window_s),
                stable_concurrency=track.window.mean(now, settings.stable_window_s),
                idle_s=track.idle_s(now, settings)
                if track.desired > 0
                else now - track.last_active,
                held=waiting,
            )
            # Idle: may be stopped to make room. Nothing in flight for a whole stable window,
            # and no request answered for as long (a request counts only in the pass its
            # counter rose: a steady trickle between passes is not idle).
            idle = (
                settings.scales_to_zero
                and track.desired > 0
                and track.waking_since is None
                and not active[key]
                and now - track.last_active >= settings.stable_window_s
                and track.window.peak(now, settings.stable_window_s) == 0
            )
            wanted = track.held_want(now, want, settings.stable_window_s)
            if wanted <= signal.workers:
                track.wanting_since = None
            elif track.wanting_since is None:
                track.wanting_since = now
            demands.append(
                Demand(
                    key,
                    wanted,
                    settings.min_replicas,
                    signal.workers,
                    item.footprint_bytes,
                    memory,
                    evictable=idle,
                    last_active=track.last_active,
                    version=item.version,
                    waiting_since=track.wanting_since
                    if track.wanting_since is not None
                    else math.inf,
                    packed=item.packed,
                )
            )
        admission = admit(demands, self._with_pending_evictions(capacity, signals, now))
        problems = admission.problems
        memory_of = {d.key: d.memory_bytes for d in demands}
        for key in admission.evicted:
            # Stopped to make room: at zero as if idle long enough; traffic wakes it again.
            evicted = self._tracks[key]
            evicted.last_active = -math.inf
            evicted.wants.clear()
            self._evicting[key] = (memory_of[key], now)
        out: dict[PlacedTrackKey, RegionScale] = {}
        for key, desired in admission.granted.items():
            track = self._tracks.get(key)
            settings = self._settings[key]
            if track is None:  # deactivated
                out[key] = RegionScale(0)
                continue
            signal = signals.get(key, LoadSignal())
            if track.desired == 0 and desired > 0 and settings.scales_to_zero:
                track.waking_since = track.started = now
                track.wake_demanded = active.get(key, False)
            if track.waking_since is not None and signal.serving:
                if track.wake_demanded:
                    self.ledger.record(
                        ColdStart(
                            key.environment,
                            key.name,
                            key.region,
                            key.track,
                            now - track.waking_since,
                        )
                    )
                track.waking_since = None
                track.wake_demanded = False
            if desired == 0:
                track.waking_since = None
                track.wake_demanded = False
            track.desired = desired
            cold = settings.scales_to_zero and (desired == 0 or track.waking_since is not None)
            out[key] = RegionScale(desired, cold, problems.get(key, ""), track.failed)
        for key in set(self._tracks) - seen:
            del self._tracks[key]
            self._settings.pop(key, None)
        self.decisions = out
        return out

    def _with_pending_evictions(
        self,
        capacity: Mapping[str, RegionBudget],
        signals: Mapping[PlacedTrackKey, LoadSignal],
        now: float,
    ) -> dict[str, RegionBudget]:
        """`capacity`, with the memory of tracks stopped to make room counted as being freed
        until their agent reports their workers draining (or gone), at most EVICTION_REPORT_S."""
        for key, (_, since) in list(self._evicting.items()):
            if not signals.get(key, LoadSignal()).workers or now - since > EVICTION_REPORT_S:
                del self._evicting[key]
        coming: dict[str, int] = {}
        for key, (memory, _) in self._evicting.items():
            coming[key.region] = coming.get(key.region, 0) + memory
        return {
            region: replace(b, memory_draining_bytes=b.memory_draining_bytes + coming[region])
            if region in coming
            else b
            for region, b in capacity.items()
        }

    def next_check_s(self) -> float | None:
        """Seconds until a decision may change with no new input; None when none can."""
        now = self._clock()
        soonest: float | None = None
        for key, track in self._tracks.items():
            settings = self._settings[key]
            if not settings.autoscaled:
                continue
            if track.window.peak(now, settings.stable_window_s) > 0 or (
                track.wants and max(w for _, w in track.wants) > track.wants[-1][1]
            ):
                wait = REEVALUATE_S
            elif settings.scales_to_zero and track.desired > 0:
                idle = track.idle_s(now, settings)
                wait = max(0.05, settings.scale_to_zero_after_s - idle)
                if math.isinf(wait):  # never goes back to zero
                    continue
            else:
                continue
            soonest = wait if soonest is None else min(soonest, wait)
        return soonest


def _new_track(settings: ScalingSettings, signal: LoadSignal, now: float) -> _Track:
    """A track first seen: a new (or re-activated) deployment, or one found after a
    control-plane restart. One that may scale to zero starts with `initial_replicas` (none by
    default: nothing runs until invoked), or keeps a worker found running (after a restart);
    the others start at their floor."""
    window = LoadWindow(max(settings.stable_window_s, settings.panic_window_s))
    if not settings.scales_to_zero:
        floor = max(settings.min_replicas, 1 if settings.max_replicas else 0)
        desired = max(settings.initial_replicas, floor)
    else:
        desired = max(settings.initial_replicas, 1 if signal.workers else 0)
    if desired == 0:
        # Never active: it stays at zero until traffic or a held request wakes it.
        return _Track(window, 0, -math.inf, dict(signal.counters), started=now)
    track = _Track(window, desired, now, dict(signal.counters), started=now)
    # The initial count stands for a stable window, like any want (then load decides).
    track.wants.append((now, desired))
    if settings.scales_to_zero and not signal.serving:
        # Warm at creation: workers are on their way; requests wait in the activator.
        track.waking_since = now
    return track


def _rose(before: Mapping[str, int], after: Mapping[str, int]) -> bool:
    """Any counter went up (a new worker's or cluster's counter counts from zero)."""
    return any(value > before.get(name, 0) for name, value in after.items())
