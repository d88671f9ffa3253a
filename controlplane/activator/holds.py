"""Held requests, keyed by the gateway they entered and the (track, region) that must wake."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from controlplane.activator.limits import HeldNow, HoldLimits, over_limit
from meshline.keys import PlacedTrackKey

# Answer a little before Envoy's own timeout, so the client reads our reason, not Envoy's.
TIMEOUT_MARGIN_S = 0.25


@dataclass(frozen=True)
class HoldRequest:
    """What the activator knows of a request: who sent it and the headers its route set."""

    gateway: str  # region of the gateway that sent it (its verified certificate names it)
    deployment: str
    environment: str
    version: str
    # Envoy's x-envoy-expected-rq-timeout-ms: how long it waits for our answer (0 = unknown).
    envoy_timeout_s: float = 0.0


@dataclass(frozen=True)
class HoldTarget:
    key: PlacedTrackKey  # (environment, deployment, track, region to wake)
    cold_start_timeout_s: float


@dataclass(frozen=True)
class WakeProblem:
    """Why a region's wake has no worker yet; `user_must_act` when waiting will not fix it (its
    last cold start crash-looped)."""

    reason: str
    user_must_act: bool = False
    # The region has no room for the worker (memory budget, max_replicas): it starts once
    # there is, not by itself.
    waits_for_room: bool = False


@dataclass(frozen=True)
class HoldResult:
    retry: bool  # a worker can take it now: Envoy replays the request
    message: str


HoldKey = tuple[str, PlacedTrackKey]  # (gateway, what wakes)


class Activator:
    """`resolve` maps a request to what must wake (None: nothing, replay it; a string: why it
    cannot be served); `on_change` asks
    the reconciler for a rebuild, which calls `update` with what the data plane confirmed.
    `limits` caps the requests held at once (per gateway region and in all)."""

    def __init__(
        self,
        resolve: Callable[[HoldRequest], HoldTarget | str | None],
        on_change: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
        limits: HoldLimits | None = None,
    ) -> None:
        self._resolve = resolve
        self._on_change = on_change
        self._clock = clock
        self.limits = limits or HoldLimits()
        self._waiting: dict[HoldKey, int] = {}
        self._ready: dict[HoldKey, asyncio.Event] = {}
        self._problems: dict[PlacedTrackKey, WakeProblem] = {}
        self.total_held = 0

    def held(self) -> dict[PlacedTrackKey, int]:
        """Requests waiting now, per (track, region) to wake."""
        out: dict[PlacedTrackKey, int] = {}
        for (_, key), count in self._waiting.items():
            out[key] = out.get(key, 0) + count
        return out

    def waiting(self) -> list[HoldKey]:
        return [k for k, n in self._waiting.items() if n > 0]

    def held_now(self, gateway: str) -> HeldNow:
        """Requests held now from `gateway`'s region, and in all."""
        total = from_gateway = 0
        for (sender, _), count in self._waiting.items():
            total += count
            if sender == gateway:
                from_gateway += count
        return HeldNow(from_gateway, total)

    def update(
        self,
        ready: Callable[[str, PlacedTrackKey], bool],
        problems: Mapping[PlacedTrackKey, WakeProblem],
    ) -> None:
        """Release the holds whose gateway now routes to a worker of their track."""
        self._problems = dict(problems)
        for hold_key in self.waiting():
            if ready(*hold_key):
                event = self._ready.get(hold_key)
                if event is not None:
                    event.set()

    async def hold(self, request: HoldRequest) -> HoldResult:
        target = self._resolve(request)
        if target is None:  # not cold (any more): replay at once
            return HoldResult(True, "a worker is ready")
        if isinstance(target, str):
            return HoldResult(False, target)
        held = self.held_now(request.gateway)
        refusal = over_limit(
            self.limits, held, request.gateway, request.deployment, request.environment
        )
        if refusal is not None:
            return HoldResult(False, refusal)
        timeout = target.cold_start_timeout_s
        if request.envoy_timeout_s > 0:
            timeout = min(timeout, max(0.0, request.envoy_timeout_s - TIMEOUT_MARGIN_S))
        hold_key = (request.gateway, target.key)
        event = self._ready.get(hold_key)
        if event is None or event.is_set():
            event = self._ready[hold_key] = asyncio.Event()
        self._waiting[hold_key] = self._waiting.get(hold_key, 0) + 1
        self.total_held += 1
        started = self._clock()
        self._on_change()  # the autoscaler sees the demand at once
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            self._waiting[hold_key] -= 1
            if self._waiting[hold_key] <= 0:
                del self._waiting[hold_key]
                if self._ready.get(hold_key) is event:
                    del self._ready[hold_key]
        if event.is_set():
            return HoldResult(True, "a worker is ready")
        return HoldResult(False, self._timeout_message(request, target, self._clock() - started))

    def _timeout_message(self, request: HoldRequest, target: HoldTarget, waited: float) -> str:
        environment, deployment, _, region = target.key
        problem = self._problems.get(target.key, WakeProblem(""))
        why = f": {problem.reason}" if problem.reason else ": its worker is still starting"
        if problem.user_must_act:
            then = f"; a user must act (meshline get deployment {deployment} -e {environment})"
        elif problem.waits_for_room:
            then = "; it starts once the region has room, retry later"
        else:
            then = "; it keeps starting, retry shortly"
        return (
            f"deployment '{deployment}' (environment '{environment}') had no ready worker in "
            f"region '{region}' after a {waited:.1f} s cold start (cold_start_timeout "
            f"{target.cold_start_timeout_s:g} s){why}{then}"
        )
