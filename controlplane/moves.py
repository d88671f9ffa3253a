"""Placement changes are make-before-break: a region a deployment leaves keeps serving it until
the regions it moves to serve.

A deployment's placement changes under it when its own location or flavor policy changes, a
mandatory environment policy or a region's flavors or capacity change, or a release copies
another placement over it. Dropping the old regions at once left no serving region for the
seconds a new worker needs to start (503 "no healthy upstream" under load). Here the old
regions that still run its workers ("leaving") keep their workers and routes until every
placed region has a worker its own gateway routes to, and every other gateway routes to one of
those regions' gateways (its Envoy's health check passed): both from the agents' reports. Then
they are let go, and their workers drain as in a version change (EDS DRAINING, stopped once the
gateway ACKed that).

A policy may forbid the old region (a location policy that now excludes it), so the transition
is bounded: after MOVE_DEADLINE_S (the rollouts' progress deadline) the old regions are let go
anyway and status says so until the new placement serves.

Pure: `move_facts` reads the agents' reports, `decide_move(facts, previous, now)` decides. The
reconciler keeps each deployment's MoveState between rebuilds in memory: a restarted control
plane finds the old regions again from the agents' reports and starts the deadline over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from controlplane.autoscale import RegionScale
from controlplane.ir.build import gateway_regions, is_serving
from controlplane.ir.index import ClusterIndex
from controlplane.policy import ResolvedDeployment
from meshline.keys import DeploymentKey, PlacedTrackKey, TrackKey
from meshline.v1 import agent_pb2

log = logging.getLogger(__name__)

MOVE_DEADLINE_S = 300.0


@dataclass(frozen=True)
class MoveFacts:
    """What the data plane says about one deployment, for its placement."""

    placement: tuple[str, ...]  # the regions its policies place it in now
    # Regions outside the placement whose agent runs a worker of it that is not draining.
    running: frozenset[str] = frozenset()
    # Placed regions with a serving worker of every track (in their own gateway's view).
    serving: frozenset[str] = frozenset()
    # Regions whose agent reported (only their gateways are configured).
    connected: frozenset[str] = frozenset()
    # Region → the regions whose gateway its Envoy routes to in every cluster of the deployment.
    reaches: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Placed regions scaled to zero on purpose: nothing to wait for, a request wakes them.
    idle: frozenset[str] = frozenset()


@dataclass(frozen=True)
class MoveState:
    """What a move remembers between rebuilds."""

    to: tuple[str, ...]  # the placement it moves to
    started_at: float
    origin: tuple[str, ...]  # the regions it moves away from
    # Let go but still running (draining): never kept again, even if the new placement fails.
    released: frozenset[str] = frozenset()
    # Let go at the deadline while the new placement did not serve yet.
    expired: bool = False


@dataclass(frozen=True)
class Move:
    """A move in progress, for the network (what to keep) and status (what it waits for)."""

    origin: tuple[str, ...]
    to: tuple[str, ...]
    keep: tuple[str, ...]  # leaving regions that still serve: their workers and routes stay
    waiting: str  # what letting them go waits for ("" once the new placement serves)
    expired: bool = False  # let go at the deadline, not because the new placement served

    def describe(self, deadline_s: float = MOVE_DEADLINE_S) -> str:
        """The status words: where it moves, what it waits for, the old regions' part."""
        moving = f"moving from {', '.join(self.origin)} to {', '.join(self.to)}"
        if self.expired:
            return (
                f"{moving} did not finish within {deadline_s:g} s: {', '.join(self.origin)} "
                f"stopped serving it anyway; {self.waiting}"
            )
        return (
            f"{moving}: {self.waiting}; {', '.join(self.keep)} keeps serving it until then "
            f"(at most {deadline_s:g} s)"
        )


def waiting_for(facts: MoveFacts) -> str:
    """What the new placement lacks before the old regions may go; "" when nothing."""
    placed = [r for r in facts.placement if r in facts.connected]
    if not placed:
        return f"waiting for the agent of {' or '.join(facts.placement)} to connect"
    missing = [r for r in placed if r not in facts.serving and r not in facts.idle]
    if missing:
        return f"waiting for a healthy worker in {', '.join(missing)}"
    serving = [r for r in placed if r in facts.serving]
    if not serving:
        return ""  # all at zero on purpose: requests wake them through the activator
    blind = sorted(
        g
        for g in facts.connected
        if g not in facts.placement and not facts.reaches.get(g, frozenset()) & set(serving)
    )
    if blind:
        return f"waiting for the gateway of {', '.join(blind)} to reach {' or '.join(serving)}"
    return ""


def decide_move(
    facts: MoveFacts, previous: MoveState | None, now: float
) -> tuple[MoveState | None, Move | None]:
    """The move's next state, and what the network keeps for it (None: nothing moves)."""
    same = previous is not None and previous.to == facts.placement
    # A released region is done once its workers are gone; another placement is a new move.
    released = (previous.released if previous else frozenset()) & facts.running
    kept = facts.running - released
    was_expired = same and previous is not None and previous.expired
    waiting = waiting_for(facts)
    if not kept and not released and not (was_expired and waiting):
        return None, None
    started = previous.started_at if same and previous is not None else now
    origin = tuple(sorted(set(previous.origin if same and previous is not None else ()) | kept))
    expired = was_expired or (bool(kept) and now - started >= MOVE_DEADLINE_S)
    if not waiting or expired:
        released, kept = released | kept, frozenset()
    expired = expired and bool(waiting)
    state = MoveState(facts.placement, started, origin, released, expired)
    if not kept and not expired:
        return (state if released else None), None
    return state, Move(origin, facts.placement, tuple(sorted(kept)), waiting, expired)


@dataclass(frozen=True)
class ReportIndex:
    """The agents' reports indexed once per pass: each region's workers by deployment, and the
    gateways each cluster of its Envoy routes to. Reading a deployment's facts from it costs
    what that deployment has, not what the whole network has (10,000 deployments)."""

    workers: Mapping[str, Mapping[DeploymentKey, tuple[agent_pb2.WorkerReport, ...]]]
    reaches: Mapping[str, Mapping[str, frozenset[str]]]
    regions: frozenset[str]

    @staticmethod
    def of(reports: Mapping[str, agent_pb2.AgentReport]) -> ReportIndex:
        # The agents report Envoy's hostnames as they are; which gateway each names is ours.
        gateways = gateway_regions(reports)
        workers: dict[str, dict[DeploymentKey, tuple[agent_pb2.WorkerReport, ...]]] = {}
        reaches: dict[str, dict[str, frozenset[str]]] = {}
        for region, report in reports.items():
            mine: dict[DeploymentKey, list[agent_pb2.WorkerReport]] = {}
            for w in report.workers:
                mine.setdefault(DeploymentKey(w.environment, w.deployment), []).append(w)
            workers[region] = {k: tuple(v) for k, v in mine.items()}
            reaches[region] = {
                c.cluster: frozenset(gateways[h] for h in c.routable_hostnames if h in gateways)
                for c in report.clusters
            }
        return ReportIndex(workers, reaches, frozenset(reports))


def move_facts(
    environment: str,
    name: str,
    tracks: tuple[str, ...],
    placement: tuple[str, ...],
    reports: Mapping[str, agent_pb2.AgentReport] | ReportIndex,
    clusters: ClusterIndex,
    scales: Mapping[PlacedTrackKey, RegionScale] | None = None,
) -> MoveFacts:
    """The facts of one deployment from its agents' last reports (`reports`: by region, about
    the clusters the last IR named: `clusters`; or their `ReportIndex`) and the autoscaler's
    last decisions (`scales`)."""
    index = reports if isinstance(reports, ReportIndex) else ReportIndex.of(reports)
    key = DeploymentKey(environment, name)
    running, serving = set(), set()
    for region, by_deployment in index.workers.items():
        mine = by_deployment.get(key, ())
        if region not in placement:
            if any(w.state != agent_pb2.WORKER_STATE_DRAINING for w in mine):
                running.add(region)
        elif all(any(is_serving(w) and w.track == t for w in mine) for t in tracks):
            serving.add(region)
    names = [c for t in tracks for c in clusters.clients(TrackKey(environment, name, t))]
    reaches = {}
    for region, by_cluster in index.reaches.items():
        sets = [by_cluster.get(c, frozenset()) for c in names]
        reaches[region] = frozenset.intersection(*sets) if sets else frozenset()
    idle = frozenset(
        region
        for region in placement
        if all(
            _at_zero((scales or {}).get(PlacedTrackKey(environment, name, t, region)))
            for t in tracks
        )
    )
    return MoveFacts(
        placement, frozenset(running), frozenset(serving), index.regions, reaches, idle
    )


def _at_zero(scale: RegionScale | None) -> bool:
    """At zero on purpose: a region back at zero because its wake crash-looped cannot serve."""
    return scale is not None and scale.cold and scale.desired == 0 and scale.failed is None


class MoveTracker:
    """Keeps every deployment's MoveState between rebuilds (the thin shell around decide_move)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._states: dict[DeploymentKey, MoveState] = {}
        self._deadlines: list[float] = []  # of the moves that keep old regions now
        self._moves: dict[DeploymentKey, Move] = {}  # the last update's, for the log

    def update(
        self,
        deployments: Iterable[ResolvedDeployment],
        reports: Mapping[str, agent_pb2.AgentReport],
        clusters: ClusterIndex,
        scales: Mapping[PlacedTrackKey, RegionScale] | None = None,
    ) -> dict[DeploymentKey, Move]:
        """The moves in progress, by deployment (`scales`: the autoscaler's last decisions).
        A deactivated deployment runs nothing: its workers simply stop, wherever they are."""
        now = self._clock()
        deps = tuple(deployments)
        index = ReportIndex.of(reports)
        states: dict[DeploymentKey, MoveState] = {}
        moves: dict[DeploymentKey, Move] = {}
        for dep in deps:
            if dep.deactivated:
                continue
            tracks = tuple(t.name for t in dep.tracks)
            facts = move_facts(
                dep.environment, dep.name, tracks, dep.placement.regions, index, clusters, scales
            )
            state, move = decide_move(facts, self._states.get(dep.key), now)
            if state is not None:
                states[dep.key] = state
            if move is not None:
                moves[dep.key] = move
        self._states = states
        self._deadlines = [
            states[key].started_at + MOVE_DEADLINE_S for key, move in moves.items() if move.keep
        ]
        self._log(moves, {d.key: d.placement.regions for d in deps if not d.deactivated})
        return moves

    def _log(
        self,
        moves: Mapping[DeploymentKey, Move],
        placements: Mapping[DeploymentKey, tuple[str, ...]],
    ) -> None:
        """Each step of a move once (status only shows the present): what it waits for, and
        how it ended. Nothing for a deployment deleted or deactivated mid-move."""
        for (environment, name), move in moves.items():
            if self._moves.get(DeploymentKey(environment, name)) != move:
                log.info("%s/%s: %s", environment, name, move.describe())
        for key, move in self._moves.items():
            if key in moves or key not in placements:
                continue
            label, route = (
                f"{key.environment}/{key.name}",
                f"{', '.join(move.origin)} to {', '.join(move.to)}",
            )
            if placements[key] == move.to:
                log.info("%s: moved from %s; %s serves it", label, route, ", ".join(move.to))
            else:
                log.info(
                    "%s: the move from %s was given up: it is placed in %s now",
                    label,
                    route,
                    ", ".join(placements[key]),
                )
        self._moves = dict(moves)

    def next_check_s(self) -> float | None:
        """Seconds until the next deadline of a move that still keeps old regions."""
        if not self._deadlines:
            return None
        return max(0.0, min(self._deadlines) - self._clock())
