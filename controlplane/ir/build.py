"""Build the network IR from resolved deployments and what agents report.

A pure function: the reconciler gathers the inputs (store, policy, agents, offload) and hands
the IR to translate. A region gets a gateway IR only once its agent has reported, so a restarted
control plane never pushes an empty config over a live one; another region's gateway is a
failover target only while its agent is connected.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from controlplane.ir import names
from controlplane.ir.model import (
    TIER_ACTIVATOR,
    TIER_GATEWAY,
    TIER_LOCAL,
    Backend,
    Credentials,
    DeploymentRoute,
    EdgeTls,
    Endpoint,
    GatewayIR,
    GatewayTls,
    NetworkIR,
    PeerPath,
    PublicKey,
    Tier,
)
from controlplane.policy import ResolvedDeployment, offload_targets, tier_order
from controlplane.policy.settings import Track
from meshline.bind import is_loopback
from meshline.keys import DeploymentKey, PlacedDeploymentKey, PlacedTrackKey
from meshline.v1 import agent_pb2
from meshline.v1.resources_pb2 import Region

State = agent_pb2.WorkerState


@dataclass(frozen=True)
class GatewayAddress:
    """Where a region's gateway takes clients (`host:port`), and its peer listener, where
    other regions' gateways forward to (None: it takes no forwarded request)."""

    host: str
    port: int
    peer: GatewayAddress | None = None

    @staticmethod
    def parse(address: str, peer_address: str = "") -> GatewayAddress:
        host, port = address.rsplit(":", 1)
        peer = GatewayAddress.parse(peer_address) if peer_address else None
        return GatewayAddress(host, int(port), peer)


def _endpoint(report: agent_pb2.WorkerReport) -> Endpoint:
    grpc_host, grpc_port = report.grpc_address.rsplit(":", 1)
    _, http_port = report.http_address.rsplit(":", 1)
    return Endpoint(
        worker_id=report.worker_id,
        host=grpc_host,
        grpc_port=int(grpc_port),
        http_port=int(http_port),
        healthy=report.state == State.WORKER_STATE_HEALTHY,
        draining=report.state == State.WORKER_STATE_DRAINING,
    )


def gateway_regions(regions: Iterable[str]) -> dict[str, str]:
    """EDS hostname → region, for the gateways of `regions` (a lookup, nothing parsed); agents
    report hostnames back as Envoy shows them."""
    return {names.gateway_hostname(region): region for region in regions}


def gateway_endpoint(region: str, address: GatewayAddress, healthy: bool) -> Endpoint:
    """Another region's Envoy, at its peer listener (one port serves gRPC and REST)."""
    assert address.peer is not None, f"region {region}'s gateway has no peer listener"
    peer = address.peer
    return Endpoint(names.gateway_hostname(region), peer.host, peer.port, peer.port, healthy)


def _workers_of(
    reports: Sequence[agent_pb2.WorkerReport], dep: ResolvedDeployment, track: Track
) -> list[agent_pb2.WorkerReport]:
    return [
        r
        for r in reports
        if r.deployment == dep.name and r.environment == dep.environment and r.track == track.name
    ]


def is_serving(report: agent_pb2.WorkerReport) -> bool:
    """Healthy, and the region's own Envoy routes to it (its admin API says so)."""
    return report.state == State.WORKER_STATE_HEALTHY and report.gateway_routable


def _serving(reports: Sequence[agent_pb2.WorkerReport]) -> bool:
    return any(is_serving(r) for r in reports)


@dataclass(frozen=True)
class ColdRegions:
    """Which (track, region) pairs are cold, and where the activator listens."""

    cold: frozenset[PlacedTrackKey] = frozenset()
    activator: Endpoint | None = None


def activator_endpoint(host: str, grpc_port: int, http_port: int) -> Endpoint:
    return Endpoint(names.ACTIVATOR_HOSTNAME, host, grpc_port, http_port)


def activator_reachable(activator_host: str, gateway_host: str) -> bool:
    """Does a gateway listening on `gateway_host` reach the activator at `activator_host`?
    Not when the activator is on loopback and the gateway is not: that gateway may run on
    another host, whose loopback is its own (a wildcard gateway address says nothing of its
    host, so it counts as elsewhere too)."""
    return not is_loopback(activator_host) or is_loopback(gateway_host)


def _gateway_activator(
    cold: ColdRegions, address: GatewayAddress, tls: GatewayTls | None
) -> ColdRegions:
    """`cold` as one gateway sees it: without the activator when that gateway cannot call it,
    i.e. it has no mesh certificate (the activator asks for one) or may be on another host
    while the activator listens on loopback. Its cold deployments then get no activator tier
    (the control plane warns, naming the region: controlplane.activator)."""
    activator = cold.activator
    if activator is None or (tls is not None and activator_reachable(activator.host, address.host)):
        return cold
    return ColdRegions(cold.cold, None)


def build_network(
    deployments: Sequence[ResolvedDeployment],
    regions: Mapping[str, Region],
    gateways: Mapping[str, GatewayAddress],
    workers: Mapping[str, Sequence[agent_pb2.WorkerReport]],
    offload: Mapping[PlacedDeploymentKey, int] | None = None,
    cold: ColdRegions | None = None,
    leaving: Mapping[DeploymentKey, tuple[str, ...]] | None = None,
    keys: Sequence[PublicKey] = (),
    tls: Mapping[str, GatewayTls] | None = None,
    known_regions: Iterable[str] = (),
    peer_plaintext: bool = False,
    edge: Mapping[str, EdgeTls] | None = None,
    memo: RouteMemo | None = None,
) -> NetworkIR:
    """One GatewayIR per region with a gateway; a route on it for every deployment it can reach.

    `keys`: the API key secrets that work now (every gateway verifies them all; scope is checked
    per route). `tls`: each region's gateway certificate for the peer path (forwarded requests
    go by mTLS between peer listeners, at each region's reported peer address); a gateway
    without one neither listens for nor sends forwarded requests, unless `peer_plaintext`
    (benchmark only) makes the peer path plain text. `known_regions`: every region a gateway
    may have to forward to, reporting or not (the gateways' TLS sockets, one per peer, stay the
    same while agents come and go). `edge`: the TLS each region's public listener serves
    clients (a region without: plain text).

    `leaving`: regions a placement change moves a deployment away from that keep serving it
    until the new placement does (controlplane/moves.py): their own gateway still prefers its
    workers, every other gateway has them as its last tiers.

    `memo`: the routes of an earlier call (`RouteMemo`): a deployment whose inputs did not
    change keeps its route object, so a large network is rebuilt at the cost of what changed
    (and the translate stage sees the same objects).
    """
    certificates = tls or {}
    # Forwarded to: gateways with a peer listener.
    reachable = {region: address for region, address in gateways.items() if address.peer}
    known = sorted({*known_regions, *gateways})
    cold = cold or ColdRegions()
    memo = memo if memo is not None else RouteMemo()
    memo.begin(regions, reachable, cold.activator)
    facts = _DeploymentFacts.index(workers, offload or {}, cold, leaving or {})
    ordered = sorted(deployments, key=lambda d: (d.environment, d.name))
    result = []
    for region in sorted(gateways):
        address = gateways[region]
        own = certificates.get(region)
        identity = None if peer_plaintext else own
        waking = _gateway_activator(cold, address, identity)
        routes = []
        for dep in ordered:
            route = memo.route(
                region,
                dep,
                facts.of(dep, region, waking.activator),
                functools.partial(
                    _route,
                    region,
                    dep,
                    regions,
                    reachable,
                    workers,
                    offload or {},
                    waking,
                    (leaving or {}).get(dep.key, ()),
                ),
            )
            if route is not None:
                routes.append(route)
        listens = address.peer is not None and (peer_plaintext or own is not None)
        peer = PeerPath(
            host=address.peer.host if address.peer is not None and listens else "",
            port=address.peer.port if address.peer is not None and listens else 0,
            tls=identity,
            peers=tuple(p for p in known if p != region) if (peer_plaintext or own) else (),
            plaintext=peer_plaintext,
        )
        result.append(
            GatewayIR(
                region,
                address.host,
                address.port,
                tuple(routes),
                credentials=Credentials(tuple(keys)),
                peer=peer,
                edge=(edge or {}).get(region),
            )
        )
    memo.end()
    return NetworkIR(gateways=tuple(result))


# What `_route` reads of one worker report (a report's counters and memory change all the
# time and route nothing).
_WorkerFacts = tuple[str, str, str, str, int, bool]


@dataclass(frozen=True)
class _RouteInputs:
    """What `_route` reads for one deployment on one gateway besides the deployment itself
    and the network-wide inputs (regions, reachable gateways, the activator)."""

    workers: tuple[tuple[str, tuple[_WorkerFacts, ...]], ...]  # by region
    offload: int
    cold: frozenset[PlacedTrackKey]
    leaving: tuple[str, ...]
    activator: Endpoint | None


@dataclass(frozen=True)
class _DeploymentFacts:
    """The per-deployment inputs of one `build_network` call, indexed once by deployment."""

    workers: Mapping[DeploymentKey, tuple[tuple[str, tuple[_WorkerFacts, ...]], ...]]
    offload: Mapping[PlacedDeploymentKey, int]
    cold: Mapping[DeploymentKey, frozenset[PlacedTrackKey]]
    leaving: Mapping[DeploymentKey, tuple[str, ...]]

    @staticmethod
    def index(
        workers: Mapping[str, Sequence[agent_pb2.WorkerReport]],
        offload: Mapping[PlacedDeploymentKey, int],
        cold: ColdRegions,
        leaving: Mapping[DeploymentKey, tuple[str, ...]],
    ) -> _DeploymentFacts:
        by_deployment: dict[DeploymentKey, dict[str, list[_WorkerFacts]]] = {}
        for region in sorted(workers):
            for r in workers[region]:
                facts = (r.track, r.worker_id, r.grpc_address, r.http_address, r.state)
                by_deployment.setdefault(DeploymentKey(r.environment, r.deployment), {}).setdefault(
                    region, []
                ).append((*facts, r.gateway_routable))
        colds: dict[DeploymentKey, set[PlacedTrackKey]] = {}
        for key in cold.cold:
            colds.setdefault(DeploymentKey(key[0], key[1]), set()).add(key)
        return _DeploymentFacts(
            {
                key: tuple((region, tuple(found)) for region, found in regions.items())
                for key, regions in by_deployment.items()
            },
            offload,
            {key: frozenset(keys) for key, keys in colds.items()},
            leaving,
        )

    def of(self, dep: ResolvedDeployment, region: str, activator: Endpoint | None) -> _RouteInputs:
        key = dep.key
        return _RouteInputs(
            self.workers.get(key, ()),
            self.offload.get(PlacedDeploymentKey(dep.environment, dep.name, region), 0),
            self.cold.get(key, frozenset()),
            self.leaving.get(key, ()),
            activator,
        )


@dataclass
class _Remembered:
    deployment: ResolvedDeployment
    routes: dict[str, tuple[_RouteInputs, DeploymentRoute | None]]


# What `_route` reads of a resolved deployment besides its placement's regions.
_ROUTED_FIELDS = (
    "name",
    "environment",
    "tracks",
    "routing",
    "failover",
    "offload",
    "deactivated",
    "access",
    "rate",
)


def _routed_alike(a: ResolvedDeployment, b: ResolvedDeployment) -> bool:
    """Equal in everything `_route` reads (not in how the placement came about: its sourced
    policies compare by identity, and a new plan makes new ones)."""
    return a is b or (
        a.placement.regions == b.placement.regions
        and all(getattr(a, name) == getattr(b, name) for name in _ROUTED_FIELDS)
    )


class RouteMemo:
    """Each deployment's route on each gateway from the last `build_network` call, with what
    it was made from. Forgotten whole when a network-wide input changes (a region's facts,
    where a gateway listens, the activator); a deployment gone from the network is forgotten
    at the end of the call."""

    def __init__(self) -> None:
        self._network: object = None
        self._remembered: dict[DeploymentKey, _Remembered] = {}
        self._seen: set[DeploymentKey] = set()
        # Routes made by the last call (the rest were kept): for tests and the benchmark.
        self.made = 0

    def begin(
        self,
        regions: Mapping[str, Region],
        reachable: Mapping[str, GatewayAddress],
        activator: Endpoint | None,
    ) -> None:
        network = (
            tuple(
                (name, regions[name].SerializeToString(deterministic=True))
                for name in sorted(regions)
            ),
            tuple(sorted(reachable.items())),
            activator,
        )
        if network != self._network:
            self._network = network
            self._remembered = {}
        self._seen = set()
        self.made = 0

    def route(
        self,
        region: str,
        dep: ResolvedDeployment,
        inputs: _RouteInputs,
        make: Callable[[], DeploymentRoute | None],
    ) -> DeploymentRoute | None:
        key = dep.key
        remembered = self._remembered.get(key)
        if remembered is None or (
            key not in self._seen and not _routed_alike(remembered.deployment, dep)
        ):
            remembered = self._remembered[key] = _Remembered(dep, {})
        remembered.deployment = dep
        self._seen.add(key)
        known = remembered.routes.get(region)
        if known is not None and known[0] == inputs:
            return known[1]
        route = make()
        self.made += 1
        remembered.routes[region] = (inputs, route)
        return route

    def end(self) -> None:
        for key in set(self._remembered) - self._seen:
            del self._remembered[key]


def _route(
    entry: str,
    dep: ResolvedDeployment,
    regions: Mapping[str, Region],
    gateways: Mapping[str, GatewayAddress],
    workers: Mapping[str, Sequence[agent_pb2.WorkerReport]],
    offload: Mapping[PlacedDeploymentKey, int],
    cold: ColdRegions,
    leaving: tuple[str, ...] = (),
) -> DeploymentRoute | None:
    if dep.deactivated:
        return DeploymentRoute(deployment=dep.name, environment=dep.environment, deactivated=True)
    entry_region = regions.get(entry) or _bare_region(entry)
    allowed = [regions[name] for name in dep.placement.regions if name in regions]
    order = [
        name
        for name in tier_order(entry_region, allowed, dep.routing, dep.failover)
        if name == entry or name in gateways
    ]
    # Regions a move leaves serve until the new placement does: last, whatever failover says.
    order += [name for name in leaving if name != entry and name in gateways]
    served_here = entry in dep.placement.regions or entry in leaving
    # Workers still running here though the region no longer serves the deployment (a move let
    # it go): listed (draining) until their drain is confirmed, like a replaced version's.
    lingering = not served_here and any(
        _workers_of(workers.get(entry, ()), dep, track) for track in dep.tracks
    )
    # The region whose workers this gateway waits for when none can serve: its own, or
    # the nearest allowed one. While that region is cold the activator comes last.
    wakes_region = entry if served_here else next((n for n in order if n != entry), "")
    if entry not in dep.placement.regions and (served_here or lingering):
        order.insert(0, entry)
    percent = (
        offload.get(PlacedDeploymentKey(dep.environment, dep.name, entry), 0) if served_here else 0
    )
    targets = offload_targets(order, entry, dep.offload) if percent else ()
    backends = []
    for track in dep.tracks:
        local = tuple(
            sorted(
                (
                    _endpoint(r)
                    for r in _workers_of(workers.get(entry, ()), dep, track)
                    if r.grpc_address  # a packed model not placed in a shared worker yet
                ),
                key=lambda e: e.worker_id,
            )
        )
        tiers: list[Tier] = []
        for name in order:
            if name == entry:
                tiers.append(Tier(name, TIER_LOCAL, 0, local))
            else:
                healthy = _serving(_workers_of(workers.get(name, ()), dep, track))
                host = gateway_endpoint(name, gateways[name], healthy)
                tiers.append(Tier(name, TIER_GATEWAY, 0, (host,)))
        prioritized = _prioritize(tiers, entry, targets, percent)
        wakes = wakes_region
        waking = PlacedTrackKey(dep.environment, dep.name, track.name, wakes)
        if cold.activator is not None and waking in cold.cold:
            last = max((t.priority for t in prioritized), default=-1) + 1
            prioritized += (Tier(wakes, TIER_ACTIVATOR, last, (cold.activator,)),)
        else:
            wakes = ""
        backends.append(
            Backend(
                track=track.name,
                version=track.version,
                weight=track.weight,
                mirror_percent=track.mirror_percent,
                tiers=prioritized,
                local_endpoints=local if served_here or lingering else None,
                wakes=wakes,
            )
        )
    return DeploymentRoute(
        deployment=dep.name,
        environment=dep.environment,
        backends=tuple(backends),
        strategy=dep.routing.strategy,
        hash_header=dep.routing.hash_header,
        request_timeout_s=dep.routing.timeout_s,
        retry=dep.routing.retry,
        health_check=dep.failover.health_check,
        outlier=dep.failover.outlier,
        offload_percent=percent if targets else 0,
        access=dep.access,
        rate=dep.rate,
    )


def _prioritize(
    tiers: Sequence[Tier], entry: str, targets: Sequence[str], percent: int
) -> tuple[Tier, ...]:
    """Priorities in tier order; offload moves its targets into priority 0 beside the entry."""
    if not targets or not tiers or tiers[0].region != entry:
        return tuple(_with_priority(t, i) for i, t in enumerate(tiers))
    shared = [tiers[0], *(t for t in tiers if t.region in targets)]
    rest = [t for t in tiers[1:] if t.region not in targets]
    each = percent // len(targets)
    out = [_with_priority(tiers[0], 0, 100 - each * len(targets))]
    out += [_with_priority(t, 0, each) for t in shared[1:]]
    out += [_with_priority(t, i + 1) for i, t in enumerate(rest)]
    return tuple(out)


def _with_priority(tier: Tier, priority: int, share: int = 100) -> Tier:
    return Tier(tier.region, tier.kind, priority, tier.endpoints, share)


def _bare_region(name: str) -> Region:
    region = Region()
    region.metadata.name = name
    return region
