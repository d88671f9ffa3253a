"""Cold starts as the reconciler sees them: what the autoscaler is asked, what a request held
by the activator waits for, and when it may be replayed. Pure; table-tested."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from controlplane.activator import HoldTarget, WakeProblem
from controlplane.autoscale import LoadSignal, RegionScale
from controlplane.autoscale.autoscaler import ScaleInput
from controlplane.ir.index import ClusterIndex
from controlplane.ir.model import NetworkIR
from controlplane.policy.scaling import DEFAULT_COLD_START_TIMEOUT_S
from controlplane.reconcile.plan import NetworkPlan
from controlplane.reconcile.state import HoldSite
from meshline.keys import DeploymentKey, PlacedTrackKey, TrackKey
from meshline.v1 import agent_pb2


def scale_inputs(
    plan: NetworkPlan,
    configured: Mapping[DeploymentKey, str],
    footprints: Mapping[TrackKey, int],
) -> list[ScaleInput]:
    """Every placed track; a failed wake is remembered for its revision and `configured`
    fingerprint (the deployment's and its environment's spec). `footprints`: what one worker
    of each track is planned to use."""
    return [
        ScaleInput(
            PlacedTrackKey(resolved.environment, resolved.name, track.name, region),
            resolved.scaling,
            resolved.deactivated,
            plan.state.revisions[resolved.key][track.name],
            configured.get(resolved.key, ""),
            footprints.get(TrackKey(resolved.environment, resolved.name, track.name), 0),
            track.version,
            packed=_packed(plan, TrackKey(resolved.environment, resolved.name, track.name)),
        )
        for resolved in plan.resolved
        for track in resolved.tracks
        for region in resolved.placement.regions
    ]


def _packed(plan: NetworkPlan, key: TrackKey) -> bool:
    workload = plan.workloads.get(key)
    return workload is not None and workload.packed


def wake_problem(scale: RegionScale, signal: LoadSignal) -> WakeProblem:
    """What the activator tells a held request about the wake it waits for."""
    if scale.failed is not None:
        return WakeProblem(scale.failed.describe(), user_must_act=True)
    if scale.problem:
        return WakeProblem(scale.problem, waits_for_room=True)
    return WakeProblem(signal.problem)


def hold_targets(network: NetworkIR, plan: NetworkPlan) -> dict[HoldSite, HoldTarget]:
    """For every backend with an activator tier: the (track, region) its held requests wait for."""
    timeouts = {r.key: r.scaling.cold_start_timeout_s for r in plan.resolved}
    out = {}
    for gateway in network.gateways:
        for route in gateway.routes:
            for backend in route.backends:
                if not backend.wakes:
                    continue
                key = PlacedTrackKey(
                    route.environment, route.deployment, backend.track, backend.wakes
                )
                site = HoldSite(
                    gateway.region, route.environment, route.deployment, backend.version
                )
                out[site] = HoldTarget(key, timeouts.get(route.key, DEFAULT_COLD_START_TIMEOUT_S))
    return out


def hold_target(
    holds: Mapping[HoldSite, HoldTarget],
    deployments: Collection[DeploymentKey],
    site: HoldSite,
) -> HoldTarget | str | None:
    """What a request the activator got at `site` waits for: the wake its gateway waits for;
    None when the deployment is no longer cold there (Envoy's replay finds a worker); an error
    when no gateway routes the deployment anywhere.

    A request routed by a config older than the current one names a version the deployment
    no longer runs there (a re-applied spec changed it): it waits for the deployment's wake at
    that gateway. The clusters do not carry versions, so once that wake serves, Envoy's replay
    reaches the new worker; replaying at once would only come back here until Envoy has the
    new config, and fail.
    """
    target = holds.get(site)
    if target is None:
        target = next(
            (
                t
                for s, t in sorted(holds.items())
                if (s.gateway, s.environment, s.deployment)
                == (site.gateway, site.environment, site.deployment)
            ),
            None,
        )
    if target is not None:
        return target
    if DeploymentKey(site.environment, site.deployment) in deployments:
        return None
    return (
        f"the activator got a request for deployment '{site.deployment}' (environment "
        f"'{site.environment}', version '{site.version}') from gateway '{site.gateway}', which "
        "does not route it to any region"
    )


def ready(
    gateway: str,
    key: PlacedTrackKey,
    signals: Mapping[PlacedTrackKey, LoadSignal],
    reports: Mapping[str, agent_pb2.AgentReport],
    clusters: ClusterIndex,
) -> bool:
    """May a request held for `gateway` be replayed now: its Envoy can reach a worker.

    The region that woke must be served by its own Envoy; another gateway must also route to
    a host of the track's clusters (its agent counts no activator among routable hosts), i.e.
    its health check of the woken region's gateway passed.
    """
    if not signals.get(key, LoadSignal()).serving:
        return False
    if gateway == key.region:
        return True
    report = reports.get(gateway)
    if report is None:
        return False
    names = clusters.clients(key.track_key)
    routable = {c.cluster: c.routable_hosts for c in report.clusters}
    return bool(names) and all(routable.get(name, 0) > 0 for name in names)
