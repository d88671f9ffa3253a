"""A deployment's effective policies as typed settings: placement, routing, failover, offload,
traffic, access, rate. Pure: the same resources always resolve to the same result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from controlplane.policy.access import (
    AccessSettings,
    RateSettings,
    access_settings,
    rate_settings,
)
from controlplane.policy.placement import Overridden, Placement, resolve_placement
from controlplane.policy.rules import SourcedPolicy
from controlplane.policy.scaling import ScalingSettings, scaling_settings
from controlplane.policy.settings import (
    FailoverSettings,
    HealthCheckSettings,
    OffloadSettings,
    OutlierSettings,
    RetrySettings,
    RoutingSettings,
    Track,
)
from meshline.keys import DeploymentKey
from meshline.v1.resources_pb2 import (
    Deployment,
    Environment,
    FailoverPolicy,
    OffloadPolicy,
    Region,
    RoutingPolicy,
    TrafficPolicy,
)


@dataclass(frozen=True)
class ResolvedDeployment:
    """Everything the later stages need to know about one deployment."""

    name: str
    environment: str
    model: str
    version: str
    # Workers each region keeps per track at least (what placement reserves capacity for).
    replicas: int
    placement: Placement
    tracks: tuple[Track, ...]
    routing: RoutingSettings
    failover: FailoverSettings
    offload: OffloadSettings
    scaling: ScalingSettings = field(default_factory=lambda: ScalingSettings.fixed(1))
    # Kept in the network (placement, status) but runs nothing and answers a clear error.
    deactivated: bool = False
    # Who may call it and how often (checked by the entry gateway).
    access: AccessSettings = field(default_factory=AccessSettings)
    rate: RateSettings = field(default_factory=RateSettings)

    @property
    def key(self) -> DeploymentKey:
        return DeploymentKey(self.environment, self.name)

    @property
    def applied(self) -> tuple[SourcedPolicy, ...]:
        return self.placement.applied

    @property
    def overridden(self) -> tuple[Overridden, ...]:
        return self.placement.overridden


def deployment_tracks(deployment: Deployment, traffic: TrafficPolicy | None) -> tuple[Track, ...]:
    """The versions a deployment runs: its own first, then split legs, then a mirror."""
    own = deployment.spec.version
    if traffic is None or not traffic.split:
        tracks = [Track("", own, 100)]
    else:
        weights = {leg.version: leg.weight for leg in traffic.split}
        tracks = [Track("", own, weights.get(own, 0))]
        tracks += [Track(v, v, w) for v, w in weights.items() if v != own]
    if traffic is not None and traffic.mirror.version:
        mirror = traffic.mirror
        existing = next((t for t in tracks if t.version == mirror.version), None)
        if existing is None:
            tracks.append(Track(mirror.version, mirror.version, 0, mirror.percent))
        else:
            index = tracks.index(existing)
            tracks[index] = Track(existing.name, existing.version, existing.weight, mirror.percent)
    return tuple(tracks)


def resolve_deployment(
    deployment: Deployment,
    environment: Environment,
    regions: Sequence[Region],
    free_replicas: Mapping[str, int] | None = None,
) -> ResolvedDeployment:
    """Raises PlacementError (naming the colliding policies) when it cannot run anywhere."""
    dep_traffic = next(
        (p.traffic for p in deployment.spec.policies if p.WhichOneof("rule") == "traffic"), None
    )
    tracks = deployment_tracks(deployment, dep_traffic)
    scaling = scaling_settings(deployment.spec)
    reserved = 0 if deployment.spec.deactivated else scaling.min_replicas
    placement = resolve_placement(
        deployment,
        environment,
        regions,
        free_replicas,
        needed_replicas=reserved * len(tracks),
    )

    def single(rule_type: str) -> SourcedPolicy | None:
        return next(iter(placement.of_type(rule_type)), None)

    routing = single("routing")
    failover = single("failover")
    offload = single("offload")
    return ResolvedDeployment(
        name=deployment.metadata.name,
        environment=deployment.spec.environment,
        model=deployment.spec.model,
        version=deployment.spec.version,
        replicas=reserved,
        placement=placement,
        tracks=tracks,
        routing=routing_settings(routing.policy.routing if routing else None),
        failover=failover_settings(failover.policy.failover if failover else None),
        offload=offload_settings(offload.policy.offload if offload else None),
        scaling=scaling,
        deactivated=deployment.spec.deactivated,
        access=access_settings(placement.applied),
        rate=rate_settings(placement.applied),
    )


def routing_settings(rule: RoutingPolicy | None) -> RoutingSettings:
    defaults = RoutingSettings()
    if rule is None:
        return defaults
    retries = rule.retries
    base = RetrySettings()
    if retries.disabled:
        retry = RetrySettings(num_retries=0, retry_on=())
    else:
        retry = RetrySettings(
            num_retries=retries.attempts or base.num_retries,
            per_try_timeout_s=retries.per_try_timeout_s,
            retry_on=tuple(retries.retry_on) or base.retry_on,
            budget_percent=retries.budget_percent,
            min_retry_concurrency=retries.min_retry_concurrency,
        )
    return RoutingSettings(
        strategy=rule.strategy or defaults.strategy,
        hash_header=rule.hash_header.lower(),
        timeout_s=rule.timeout_s or defaults.timeout_s,
        retry=retry,
        region_preference=rule.region_preference or defaults.region_preference,
        region_order=tuple(rule.region_order),
    )


def failover_settings(rule: FailoverPolicy | None) -> FailoverSettings:
    if rule is None:
        return FailoverSettings()
    hc, od = rule.health_check, rule.outlier
    hc_base, od_base = HealthCheckSettings(), OutlierSettings()
    return FailoverSettings(
        enabled=not rule.disabled,
        regions=tuple(rule.regions),
        health_check=HealthCheckSettings(
            interval_s=hc.interval_s or hc_base.interval_s,
            timeout_s=hc.timeout_s or hc_base.timeout_s,
            unhealthy_threshold=hc.unhealthy_threshold or hc_base.unhealthy_threshold,
            healthy_threshold=hc.healthy_threshold or hc_base.healthy_threshold,
        ),
        outlier=OutlierSettings(
            consecutive_5xx=od.consecutive_5xx or od_base.consecutive_5xx,
            consecutive_gateway_failure=(
                od.consecutive_gateway_failure or od_base.consecutive_gateway_failure
            ),
            interval_s=od.interval_s or od_base.interval_s,
            base_ejection_time_s=od.base_ejection_time_s or od_base.base_ejection_time_s,
            max_ejection_percent=od.max_ejection_percent or od_base.max_ejection_percent,
        ),
    )


def offload_settings(rule: OffloadPolicy | None) -> OffloadSettings:
    if rule is None:
        return OffloadSettings()
    return OffloadSettings(
        max_inflight_per_replica=rule.max_inflight_per_replica,
        max_percent=rule.max_percent or OffloadSettings().max_percent,
        regions=tuple(rule.regions),
    )
