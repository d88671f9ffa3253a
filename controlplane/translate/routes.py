"""RDS: the one route configuration of a gateway, which applies the routing key:

- gRPC names the deployment in metadata (`x-meshline-deployment`, optional
  `x-meshline-environment`) or in `:authority` `{deployment}.{environment}[:port]`.
- REST names it in the path `/v2/models/{deployment}[/...]`, the environment in the header.
- A missing environment means `production`; an unknown deployment gets a NOT_FOUND that names it.
- `x-meshline-version` pins a request to one version the deployment runs; otherwise the
  traffic policy's weighted split applies, and a mirror gets its share of copies.
- A request another region's gateway forwarded comes to the peer listener, whose own table
  (`build_peer_route_configuration`) sends it to this region's own workers (`~local` clusters)
  or answers UNAVAILABLE: it is never forwarded again. The public table has no such route (the
  public listener refuses the hop marker before routing, `access.forged_forwards`).

Virtual hosts of the public table: one per deployment for the `:authority` form (domains `{key}`
and `{key}:*`; the authority binds the request to that deployment), and `*` for everything
else. Inside a virtual host the per-deployment routes come first, then the catch-alls.

What every forwarding route of a table would repeat is said once, on its virtual hosts
(`gateway_mutations`): the headers that name the gateway (and, on the public table, the hop
marker and the verified principal, replacing any the client sent), and a retry policy: on the
tables' default virtual hosts that of a deployment with default retries in several regions
(`default_retry`), on a deployment's `:authority` virtual host that of its own unpinned route.
A route whose own policy differs carries it, and Envoy then applies that one alone. The
headers matter only to requests sent upstream, so the virtual hosts' direct answers are
unchanged. At 1,000 deployments this took a gateway's route table from 21 to 12 KB per
deployment (the retry policy alone had been a third of it).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TypeAlias

from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.type.matcher.v3 import string_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2

from controlplane.ir import names
from controlplane.ir.model import Backend, DeploymentRoute, GatewayIR
from controlplane.policy.access import AccessSettings, RateSettings
from controlplane.policy.settings import RetrySettings
from controlplane.translate import (
    access,
    denials,
    jwt,
    path_metadata,
    ratelimit,
    responses,
    wellknown,
)
from controlplane.translate.clusters import READY_PATH
from controlplane.translate.pb import duration, uint32
from controlplane.translate.retries import retry_policy
from controlplane.translate.wire_format import length_delimited
from meshline import jwk, wire

Route: TypeAlias = route_components_pb2.Route
RouteMatch: TypeAlias = route_components_pb2.RouteMatch
HeaderMatcher: TypeAlias = route_components_pb2.HeaderMatcher

MODELS_PREFIX = "/v2/models/"
HEALTH_ANSWERS = {"/v2/health/live": '{"live":true}', "/v2/health/ready": '{"ready":true}'}
DEFAULT_VIRTUAL_HOST = "default"

_DEPLOYMENT = f"%REQ({wire.DEPLOYMENT_HEADER})%"
_ENVIRONMENT = f"%REQ({wire.ENVIRONMENT_HEADER})%"
_VERSION = f"%REQ({wire.VERSION_HEADER})%"
_VERIFIED_SUBJECT = (
    f"%DYNAMIC_METADATA({wellknown.JWT_AUTHN_METADATA}:{access.PAYLOAD_KEY}:{jwk.SUBJECT_CLAIM})%"
)


@dataclass(frozen=True)
class _Form:
    """One way a request names a deployment: a route match plus header conditions."""

    name: str
    grpc: bool
    headers: tuple[HeaderMatcher, ...]
    authority: bool = False

    def match(self, deployment: DeploymentRoute, extra: Iterable[HeaderMatcher] = ()) -> RouteMatch:
        if self.grpc:
            match = RouteMatch(prefix="/", grpc=RouteMatch.GrpcRouteMatchOptions())
        else:
            match = RouteMatch(path_separated_prefix=_model_path(deployment.deployment))
        match.headers.extend([*self.headers, *extra])
        return match


@dataclass(frozen=True)
class RouteParts:
    """One deployment's share of its gateway's route tables, made once per deployment IR: its
    `:authority` virtual host, its routes in the public table's default virtual host (the
    header forms, then the path forms: each group goes in deployment order), and its routes in
    the peer table. Read-only: tables copy them."""

    authority_host: route_components_pb2.VirtualHost
    header_routes: tuple[Route, ...]
    path_routes: tuple[Route, ...]
    hop_routes: tuple[Route, ...] = ()

    @cached_property
    def wire(self) -> PartsWire:
        """The parts serialized once, as the repeated fields they become in the tables."""
        return PartsWire(
            authority_host=length_delimited(
                VIRTUAL_HOSTS_FIELD, self.authority_host.SerializeToString(deterministic=True)
            ),
            header_routes=routes_wire(self.header_routes),
            path_routes=routes_wire(self.path_routes),
            hop_routes=routes_wire(self.hop_routes),
        )


VIRTUAL_HOSTS_FIELD = route_pb2.RouteConfiguration.DESCRIPTOR.fields_by_name["virtual_hosts"].number
ROUTES_FIELD = route_components_pb2.VirtualHost.DESCRIPTOR.fields_by_name["routes"].number


def routes_wire(routes: Iterable[Route]) -> bytes:
    """`routes` as the `routes` entries of a virtual host, in wire form."""
    return b"".join(
        length_delimited(ROUTES_FIELD, r.SerializeToString(deterministic=True)) for r in routes
    )


@dataclass(frozen=True)
class PartsWire:
    """A deployment's `RouteParts` in wire form: its `:authority` virtual host as an entry of
    the public table's `virtual_hosts`, its routes as entries of a virtual host's `routes`."""

    authority_host: bytes
    header_routes: bytes
    path_routes: bytes
    hop_routes: bytes

    @cached_property
    def digest(self) -> bytes:
        h = hashlib.sha256()
        for chunk in (self.authority_host, self.header_routes, self.path_routes, self.hop_routes):
            h.update(len(chunk).to_bytes(8, "big"))
            h.update(chunk)
        return h.digest()


def deployment_route_parts(
    deployment: DeploymentRoute, region: str, *, peer: bool = True
) -> RouteParts:
    """Everything `deployment` adds to the route tables of `region`'s gateway (`peer`: that
    gateway has a peer listener, so its routes for forwarded requests too)."""
    header_routes = [
        route
        for form in _header_forms(deployment)
        for route in _deployment_routes(deployment, form, region)
    ]
    path_routes = [
        route
        for form in _path_forms(deployment)
        for route in _deployment_routes(deployment, form, region)
    ]
    return RouteParts(
        authority_host=_authority_virtual_host(deployment, region),
        header_routes=tuple(header_routes),
        path_routes=tuple(path_routes),
        hop_routes=tuple(_hop_routes(deployment, region)) if peer else (),
    )


def gateway_route_parts(gateway: GatewayIR) -> list[RouteParts]:
    """The parts of every route of `gateway`, in the tables' order (by route name)."""
    peer = bool(gateway.peer.port)
    return [
        deployment_route_parts(d, gateway.region, peer=peer)
        for d in sorted(gateway.routes, key=lambda r: r.name)
    ]


@dataclass(frozen=True)
class TableFrame:
    """A route table without its deployments: the table's own fields (no virtual host), and
    its default virtual host (no route) with the routes that come before and after the
    deployments' routes there. The public table also holds each deployment's `:authority`
    virtual host, ahead of the default one."""

    config: route_pb2.RouteConfiguration
    default_host: route_components_pb2.VirtualHost
    first: tuple[Route, ...]
    last: tuple[Route, ...]


def public_frame(gateway: GatewayIR) -> TableFrame:
    config = route_pb2.RouteConfiguration(name=gateway.route_config_name)
    # Every answer says where the request entered; workers add where it was served.
    config.response_headers_to_add.append(
        responses.response_header(wire.ENTRY_REGION_HEADER, gateway.region)
    )
    default = route_components_pb2.VirtualHost(name=DEFAULT_VIRTUAL_HOST, domains=["*"])
    gateway_mutations(default, gateway.region, public=True)
    return TableFrame(
        config,
        default,
        tuple(_health_routes()),
        tuple(_catch_all_routes()),
    )


def peer_frame(gateway: GatewayIR) -> TableFrame:
    # No entry-region header here: the entry gateway sets it on the way back.
    default = route_components_pb2.VirtualHost(name=DEFAULT_VIRTUAL_HOST, domains=["*"])
    gateway_mutations(default, gateway.region, public=False)
    return TableFrame(
        route_pb2.RouteConfiguration(name=gateway.peer_route_config_name),
        default,
        (),
        (_unknown_probe(), *_not_forwarded_routes(gateway.region)),
    )


@functools.lru_cache(maxsize=2)
def default_retry(local: bool) -> route_components_pb2.RetryPolicy:
    """The retry policy of a deployment with default retries: what a table's virtual hosts
    say for every route that has no policy of its own. `local`: the peer table's (its routes
    reach this region's own workers only, one priority). Read-only."""
    return retry_policy(RetrySettings(), across_priorities=not local)


def gateway_mutations(
    host: route_components_pb2.VirtualHost,
    region: str,
    *,
    public: bool,
    retry: route_components_pb2.RetryPolicy | None = None,
) -> None:
    """What every forwarding route of a table sends upstream, set once on its virtual host:
    the gateway the request is at (the activator needs it, while a region is cold); on the
    public table also the hop marker (another region's gateway serves a forwarded request
    locally) and the principal the gateway verified (none for an anonymous caller), replacing
    whatever the client sent in its name (removed before the addition: Envoy's order); and the
    retry policy of its routes that have none of their own (`retry`, default `default_retry`)."""
    host.request_headers_to_add.append(responses.request_header(wire.GATEWAY_REGION_HEADER, region))
    if public:
        host.request_headers_to_add.append(responses.request_header(wire.HOP_HEADER, region))
        host.request_headers_to_remove.append(wire.PRINCIPAL_HEADER)
        host.request_headers_to_add.append(
            responses.request_header(wire.PRINCIPAL_HEADER, _VERIFIED_SUBJECT)
        )
    host.retry_policy.CopyFrom(retry if retry is not None else default_retry(local=not public))


def build_route_configuration(
    gateway: GatewayIR, parts: Sequence[RouteParts] | None = None
) -> route_pb2.RouteConfiguration:
    """The public table; `parts`: those of the gateway's routes in name order, when already
    made (`gateway_route_parts`). (The translator assembles the same bytes from the parts'
    wire form: `route_tables.py`.)"""
    parts = gateway_route_parts(gateway) if parts is None else parts
    frame = public_frame(gateway)
    config = route_pb2.RouteConfiguration()
    config.CopyFrom(frame.config)
    config.virtual_hosts.extend(p.authority_host for p in parts)
    default = config.virtual_hosts.add()
    default.CopyFrom(frame.default_host)
    default.routes.extend(frame.first)
    for part in parts:
        default.routes.extend(part.header_routes)
    for part in parts:
        default.routes.extend(part.path_routes)
    default.routes.extend(frame.last)
    return config


def build_peer_route_configuration(
    gateway: GatewayIR, parts: Sequence[RouteParts] | None = None
) -> route_pb2.RouteConfiguration:
    """The peer listener's table: forwarded requests (and other gateways' probes) for the
    deployment versions this region runs, served by its own workers only; anything else gets
    an answer that says so. `parts` as for `build_route_configuration`."""
    parts = gateway_route_parts(gateway) if parts is None else parts
    frame = peer_frame(gateway)
    config = route_pb2.RouteConfiguration()
    config.CopyFrom(frame.config)
    host = config.virtual_hosts.add()
    host.CopyFrom(frame.default_host)
    host.routes.extend(frame.first)
    for part in parts:
        host.routes.extend(part.hop_routes)
    host.routes.extend(frame.last)
    return config


def _authority_virtual_host(
    deployment: DeploymentRoute, region: str
) -> route_components_pb2.VirtualHost:
    authority = deployment.authority
    host = route_components_pb2.VirtualHost(
        name=names.authority_virtual_host(deployment.name),
        domains=[authority, f"{authority}:*"],
    )
    # Its own routes only: the retry policy of its unpinned route (the others' mostly alike;
    # a deactivated deployment forwards nothing).
    retry = (
        None
        if deployment.deactivated
        else _retry_of(deployment, _split_legs(deployment), local=False)
    )
    gateway_mutations(host, region, public=True, retry=retry)
    host.routes.extend(_health_routes())
    for form in (_Form("grpc.authority", True, (), True), _Form("http.authority", False, (), True)):
        host.routes.extend(_deployment_routes(deployment, form, region, retry))
    rest = Route(
        name=names.route_name(deployment.name, "not-found.authority"), match=RouteMatch(prefix="/")
    )
    responses.json_not_found(
        rest,
        f"authority '{authority}' serves only deployment '{deployment.deployment}' in environment "
        f"'{deployment.environment}' at {_model_path(deployment.deployment)}/...; "
        "got path '%REQ(:path)%'",
    )
    host.routes.append(rest)
    return host


def _header_forms(deployment: DeploymentRoute) -> list[_Form]:
    named = _exact(wire.DEPLOYMENT_HEADER, deployment.deployment)
    return [
        _Form(f"grpc.header{suffix}", True, (named, environment))
        for suffix, environment in _environment_matchers(deployment.environment)
    ]


def _path_forms(deployment: DeploymentRoute) -> list[_Form]:
    # Matches `/v2/models/{name}` and `/v2/models/{name}/...`, never `/v2/models/{name}x`.
    return [
        _Form(f"http{suffix}", False, (environment,))
        for suffix, environment in _environment_matchers(deployment.environment)
    ]


def _deployment_routes(
    deployment: DeploymentRoute,
    form: _Form,
    region: str,
    host_retry: route_components_pb2.RetryPolicy | None = None,
) -> list[Route]:
    """Pinned versions, an unknown pinned version, then the split (the unpinned default).
    `host_retry`: the retry policy of their virtual host (default: `default_retry`)."""
    if deployment.deactivated:
        return [_deactivated(deployment, form)]
    result = []
    for backend in deployment.backends:
        pinned = form.match(deployment, [_exact(wire.VERSION_HEADER, backend.version)])
        result.append(
            _forward(
                names.route_name(deployment.name, f"{form.name}.version.{backend.version}"),
                pinned,
                deployment,
                region,
                grpc=form.grpc,
                backends=[backend],
                host_retry=host_retry,
            )
        )
    unknown = Route(
        name=names.route_name(deployment.name, f"{form.name}.version.unknown"),
        match=form.match(deployment, [_present(wire.VERSION_HEADER)]),
    )
    serving = ", ".join(b.version for b in deployment.backends)
    message = (
        f"deployment '{deployment.deployment}' in environment '{deployment.environment}' "
        f"runs no version '{_VERSION}' (pin one of: {serving})"
    )
    if form.grpc:
        responses.grpc_not_found(unknown, message)
    else:
        responses.json_not_found(unknown, message)
    result.append(unknown)
    split = _forward(
        names.route_name(deployment.name, form.name),
        form.match(deployment),
        deployment,
        region,
        grpc=form.grpc,
        backends=_split_legs(deployment),
        host_retry=host_retry,
    )
    _add_mirrors(split.route, deployment, grpc=form.grpc)
    result.append(split)
    return result


def _deactivated(deployment: DeploymentRoute, form: _Form) -> Route:
    """A deactivated deployment keeps its routing key: a clear refusal, not NOT_FOUND."""
    route = Route(
        name=names.route_name(deployment.name, f"{form.name}.deactivated"),
        match=form.match(deployment),
    )
    denials.route_metadata(route, deployment.deployment, deployment.environment)
    for key, value in path_metadata.own_answer_on_route().items():
        route.typed_per_filter_config[key].CopyFrom(value)
    message = (
        f"deployment '{deployment.deployment}' in environment '{deployment.environment}' is "
        f"deactivated (meshline activate {deployment.deployment} -e {deployment.environment})"
    )
    if form.grpc:
        responses.grpc_error(
            route, responses.GRPC_FAILED_PRECONDITION, responses.HTTP_FORBIDDEN, message
        )
    else:
        responses.json_error(route, responses.HTTP_FORBIDDEN, message)
    return route


def _hop_routes(deployment: DeploymentRoute, region: str) -> list[Route]:
    """Requests another gateway forwarded here (and its health probes): own workers only. Only
    the peer listener has them, and the entry gateway already checked the caller."""
    hop = _present(wire.HOP_HEADER)
    named = _exact(wire.DEPLOYMENT_HEADER, deployment.deployment)
    result = []
    for backend in deployment.backends:
        version = _exact(wire.VERSION_HEADER, backend.version)
        for suffix, environment in _environment_matchers(deployment.environment):
            grpc = RouteMatch(prefix="/", grpc=RouteMatch.GrpcRouteMatchOptions())
            grpc.headers.extend([hop, named, environment, version])
            http = RouteMatch(path_separated_prefix=_model_path(deployment.deployment))
            http.headers.extend([hop, environment, version])
            probe = RouteMatch(path=READY_PATH)
            probe.headers.extend([hop, named, environment, version])
            for kind, match, is_grpc in (
                ("grpc", grpc, True),
                ("http", http, False),
                ("http.probe", probe, False),
            ):
                name = names.route_name(
                    deployment.name, f"hop.{kind}{suffix}.version.{backend.version}"
                )
                if backend.local_endpoints is None:
                    result.append(
                        _not_served_here(name, match, deployment, backend, region, is_grpc)
                    )
                else:
                    result.append(
                        _forward(
                            name,
                            match,
                            deployment,
                            region,
                            grpc=is_grpc,
                            backends=[backend],
                            local=True,
                        )
                    )
    return result


def _not_served_here(
    name: str,
    match: RouteMatch,
    deployment: DeploymentRoute,
    backend: Backend,
    region: str,
    grpc: bool,
) -> Route:
    route = Route(name=name, match=match)
    denials.route_metadata(route, deployment.deployment, deployment.environment)
    message = (
        f"request forwarded from region '%REQ({wire.HOP_HEADER})%' reached region '{region}', "
        f"which does not run deployment '{deployment.deployment}' version '{backend.version}'; "
        "forwarded requests are never forwarded again"
    )
    if grpc:
        responses.grpc_error(route, responses.GRPC_UNAVAILABLE, responses.HTTP_UNAVAILABLE, message)
    else:
        responses.json_error(route, responses.HTTP_UNAVAILABLE, message)
    return route


def _unknown_probe() -> Route:
    """Another gateway's probe for a deployment version this config does not serve (yet):
    failing it keeps this region out of the prober's rotation for that version."""
    match = RouteMatch(path=READY_PATH)
    match.headers.append(_present(wire.HOP_HEADER))
    route = Route(name="hop.http.probe.unknown", match=match)
    responses.json_error(
        route,
        responses.HTTP_UNAVAILABLE,
        f"this gateway does not serve deployment '{_DEPLOYMENT}' environment '{_ENVIRONMENT}' "
        f"version '{_VERSION}'",
    )
    return route


def _not_forwarded_routes(region: str) -> list[Route]:
    """What the peer listener answers a request that names no version this region runs."""
    message = (
        f"this is the peer listener of region '{region}': it serves only requests that other "
        f"gateways forward ('{wire.HOP_HEADER}', '{wire.DEPLOYMENT_HEADER}', "
        f"'{wire.ENVIRONMENT_HEADER}', '{wire.VERSION_HEADER}') for deployment versions it "
        "runs; clients call the gateway's public address"
    )
    grpc = Route(
        name="peer.not-forwarded.grpc",
        match=RouteMatch(prefix="/", grpc=RouteMatch.GrpcRouteMatchOptions()),
    )
    responses.grpc_not_found(grpc, message)
    rest = Route(name="peer.not-forwarded.http", match=RouteMatch(prefix="/"))
    responses.json_not_found(rest, message)
    return [grpc, rest]


def _health_routes() -> list[Route]:
    """The gateway's own liveness and readiness, answered without a worker."""
    result = []
    for path, body in sorted(HEALTH_ANSWERS.items()):
        route = Route(name=f"gateway{path.replace('/', '.')}", match=RouteMatch(path=path))
        responses.json_ok(route, body)
        result.append(route)
    return result


def _catch_all_routes() -> list[Route]:
    """Every request that named no known deployment: a clear NOT_FOUND, never a hang."""
    named = _present(wire.DEPLOYMENT_HEADER)
    result = []
    for suffix, environment, shown in _unknown_environment_variants():
        match = RouteMatch(prefix="/", grpc=RouteMatch.GrpcRouteMatchOptions())
        match.headers.extend([named, environment])
        route = Route(name=f"not-found.grpc.deployment{suffix}", match=match)
        responses.grpc_not_found(
            route, f"deployment '{_DEPLOYMENT}' not found in environment '{shown}'"
        )
        result.append(route)
    unnamed = Route(
        name="not-found.grpc.unnamed",
        match=RouteMatch(prefix="/", grpc=RouteMatch.GrpcRouteMatchOptions()),
    )
    responses.grpc_not_found(
        unnamed,
        f"no deployment named: set metadata '{wire.DEPLOYMENT_HEADER}' (and optionally "
        f"'{wire.ENVIRONMENT_HEADER}', default '{wire.DEFAULT_ENVIRONMENT}') or call "
        "authority '{deployment}.{environment}'; got authority '%REQ(:authority)%'",
    )
    result.append(unnamed)
    for suffix, environment, shown in _unknown_environment_variants():
        match = RouteMatch(prefix=MODELS_PREFIX)
        match.headers.append(environment)
        route = Route(name=f"not-found.http.deployment{suffix}", match=match)
        responses.json_not_found(
            route,
            f"deployment '{path_metadata.DEPLOYMENT_FORMAT}' not found in environment '{shown}'",
        )
        for filter_name, config in path_metadata.enabled_on_route().items():
            route.typed_per_filter_config[filter_name].CopyFrom(config)
        result.append(route)
    rest = Route(name="not-found.http.path", match=RouteMatch(prefix="/"))
    responses.json_not_found(
        rest,
        "no route for path '%REQ(:path)%': inference goes to "
        f"{MODELS_PREFIX}{{deployment}}/... (environment in header '{wire.ENVIRONMENT_HEADER}')",
    )
    result.append(rest)
    return result


def _cluster(deployment: DeploymentRoute, backend: Backend, *, grpc: bool, local: bool) -> str:
    clusters = backend.local_clusters if local else backend.clusters
    return clusters.grpc if grpc else clusters.http


def _split_legs(deployment: DeploymentRoute) -> list[Backend]:
    """What the unpinned route splits over: the weighted versions, else the main one."""
    return [b for b in deployment.backends if b.weight > 0] or [deployment.main]


def _retry_of(
    deployment: DeploymentRoute, backends: Sequence[Backend], *, local: bool
) -> route_components_pb2.RetryPolicy:
    """A route's retry policy: the deployment's settings; retries leave a region that failed
    when its backends span several priorities (regions), never on the peer table."""
    several_regions = not local and any(len({t.priority for t in b.tiers}) > 1 for b in backends)
    return retry_policy(deployment.retry, several_regions)


def _forward(
    name: str,
    match: RouteMatch,
    deployment: DeploymentRoute,
    region: str,
    *,
    grpc: bool,
    backends: list[Backend],
    local: bool = False,
    host_retry: route_components_pb2.RetryPolicy | None = None,
) -> Route:
    route = Route(name=name, match=match)
    denials.route_metadata(route, deployment.deployment, deployment.environment)
    action = route.route
    if len(backends) == 1:
        action.cluster = _cluster(deployment, backends[0], grpc=grpc, local=local)
        route.request_headers_to_add.append(
            responses.request_header(wire.VERSION_HEADER, backends[0].version)
        )
    else:
        for backend in backends:
            leg = action.weighted_clusters.clusters.add(
                name=_cluster(deployment, backend, grpc=grpc, local=local),
                weight=uint32(backend.weight),
            )
            leg.request_headers_to_add.append(
                responses.request_header(wire.VERSION_HEADER, backend.version)
            )
    action.timeout.CopyFrom(duration(deployment.request_timeout_s))
    if grpc:
        # Honour a client's shorter grpc-timeout; never let it exceed the deployment's timeout.
        action.max_stream_duration.grpc_timeout_header_max.CopyFrom(
            duration(deployment.request_timeout_s)
        )
    retry = _retry_of(deployment, backends, local=local)
    # The same as its virtual host's: said there once (`gateway_mutations`); Envoy applies a
    # route's own policy alone, never merged with the virtual host's.
    if retry != (host_retry if host_retry is not None else default_retry(local)):
        action.retry_policy.CopyFrom(retry)
    if deployment.hash_header:
        action.hash_policy.add().header.header_name = deployment.hash_header
    # Workers log which deployment a request was for, whichever form named it; another
    # region's gateway routes a forwarded request by these and serves it locally (with the
    # hop marker its virtual host adds).
    route.request_headers_to_add.extend(
        [
            responses.request_header(wire.DEPLOYMENT_HEADER, deployment.deployment),
            responses.request_header(wire.ENVIRONMENT_HEADER, deployment.environment),
        ]
    )
    if local:
        # A forwarded request: its caller was checked where it entered, whose gateway set the
        # principal (kept: only a gateway of the mesh reaches the peer listener).
        return route
    _check_caller(route, deployment)
    return route


@dataclass(frozen=True)
class _CallerChecks:
    """The per-route configs that check a deployment's callers, the same on each of its many
    routes (every form of the routing key, pinned versions): built once per deployment."""

    filter_configs: tuple[tuple[str, any_pb2.Any], ...]
    rate_limits: tuple[route_components_pb2.RateLimit, ...]


@functools.lru_cache(maxsize=4096)
def _caller_checks(
    rules: AccessSettings, rate: RateSettings, environment: str, deployment: str, name: str
) -> _CallerChecks:
    """Read-only results (callers copy them into their routes)."""
    route = DeploymentRoute(deployment, environment, access=rules, rate=rate, name=name)
    configs = dict(access.route_configs(route))
    configs[names.JWT_AUTHN_FILTER] = jwt.route_requirement(route)
    return _CallerChecks(tuple(sorted(configs.items())), tuple(ratelimit.route_actions(route)))


def _check_caller(route: Route, deployment: DeploymentRoute) -> None:
    """A route clients call: the deployment's firewall, credential, access rules and rate
    (the verified principal for the worker is its virtual host's: `gateway_mutations`)."""
    checks = _caller_checks(
        deployment.access,
        deployment.rate,
        deployment.environment,
        deployment.deployment,
        deployment.name,
    )
    for key, value in checks.filter_configs:
        route.typed_per_filter_config[key].CopyFrom(value)
    route.route.rate_limits.extend(checks.rate_limits)


def _add_mirrors(
    action: route_components_pb2.RouteAction, deployment: DeploymentRoute, *, grpc: bool
) -> None:
    """Copies for shadow versions: Envoy sends them fire-and-forget and drops the answers."""
    for backend in deployment.backends:
        if backend.mirror_percent <= 0:
            continue
        mirror = action.request_mirror_policies.add(
            cluster=_cluster(deployment, backend, grpc=grpc, local=False)
        )
        fraction = mirror.runtime_fraction.default_value
        fraction.numerator = round(backend.mirror_percent * 10_000)
        fraction.denominator = percent_pb2.FractionalPercent.MILLION
        mirror.request_headers_mutations.add().append.CopyFrom(
            responses.request_header(wire.VERSION_HEADER, backend.version)
        )


def _exact(header: str, value: str) -> HeaderMatcher:
    return HeaderMatcher(name=header, string_match=string_pb2.StringMatcher(exact=value))


def _present(header: str) -> HeaderMatcher:
    return HeaderMatcher(name=header, present_match=True)


def _environment_matchers(environment: str) -> Iterable[tuple[str, HeaderMatcher]]:
    """Header conditions that select `environment`; the default one also matches no header."""
    yield "", _exact(wire.ENVIRONMENT_HEADER, environment)
    if environment == wire.DEFAULT_ENVIRONMENT:
        yield ".default-environment", _no_environment_header()


def _unknown_environment_variants() -> Iterable[tuple[str, HeaderMatcher, str]]:
    """(name suffix, condition, environment as the error shows it)."""
    yield "", _present(wire.ENVIRONMENT_HEADER), _ENVIRONMENT
    yield ".default-environment", _no_environment_header(), wire.DEFAULT_ENVIRONMENT


def _no_environment_header() -> HeaderMatcher:
    return HeaderMatcher(name=wire.ENVIRONMENT_HEADER, present_match=False)


def _model_path(deployment: str) -> str:
    return f"{MODELS_PREFIX}{deployment}"
