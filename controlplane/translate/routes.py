"""RDS: the one route configuration `gateway` that applies the routing key (DESIGN.md §3).

- gRPC names the deployment in metadata (`x-meshline-deployment`, optional
  `x-meshline-environment`) or in `:authority` `{deployment}.{environment}[:port]`.
- REST names it in the path `/v2/models/{deployment}[/...]`, the environment in the header.
- A missing environment means `production`; an unknown deployment gets a NOT_FOUND that names it.

Virtual hosts: one per deployment for the `:authority` form (domains `{key}` and `{key}:*`; the
authority binds the request to that deployment), and `*` for everything else. Inside a virtual
host the per-deployment routes come first and the catch-alls last.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.type.matcher.v3 import string_pb2

from controlplane.ir.model import DEFAULT_ENVIRONMENT, DeploymentRoute, GatewayIR
from controlplane.translate import names, path_metadata, responses
from controlplane.translate.pb import duration
from controlplane.translate.retries import retry_policy

Route: TypeAlias = route_components_pb2.Route
RouteMatch: TypeAlias = route_components_pb2.RouteMatch
HeaderMatcher: TypeAlias = route_components_pb2.HeaderMatcher

MODELS_PREFIX = "/v2/models/"
HEALTH_ANSWERS = {"/v2/health/live": '{"live":true}', "/v2/health/ready": '{"ready":true}'}
DEFAULT_VIRTUAL_HOST = "default"

_DEPLOYMENT = f"%REQ({names.DEPLOYMENT_HEADER})%"
_ENVIRONMENT = f"%REQ({names.ENVIRONMENT_HEADER})%"


def build_route_configuration(gateway: GatewayIR) -> route_pb2.RouteConfiguration:
    deployments = sorted(gateway.routes, key=lambda r: r.key)
    config = route_pb2.RouteConfiguration(name=names.ROUTE_CONFIG_NAME)
    config.virtual_hosts.extend(_authority_virtual_host(d) for d in deployments)
    default = config.virtual_hosts.add(name=DEFAULT_VIRTUAL_HOST, domains=["*"])
    default.routes.extend(_health_routes())
    for deployment in deployments:
        default.routes.extend(_grpc_header_routes(deployment))
    for deployment in deployments:
        default.routes.extend(_http_path_routes(deployment))
    default.routes.extend(_catch_all_routes())
    return config


def _authority_virtual_host(deployment: DeploymentRoute) -> route_components_pb2.VirtualHost:
    key = deployment.key
    host = route_components_pb2.VirtualHost(
        name=names.authority_virtual_host_name(key), domains=[key, f"{key}:*"]
    )
    host.routes.extend(_health_routes())
    grpc = _forward(
        names.route_name(key, "grpc.authority"),
        RouteMatch(prefix="/", grpc=RouteMatch.GrpcRouteMatchOptions()),
        names.cluster_name_grpc(key),
        deployment,
        grpc=True,
    )
    http = _forward(
        names.route_name(key, "http.authority"),
        RouteMatch(path_separated_prefix=_model_path(deployment.deployment)),
        names.cluster_name_http(key),
        deployment,
        grpc=False,
    )
    rest = Route(name=names.route_name(key, "not-found.authority"), match=RouteMatch(prefix="/"))
    responses.json_not_found(
        rest,
        f"authority '{key}' serves only deployment '{deployment.deployment}' in environment "
        f"'{deployment.environment}' at {_model_path(deployment.deployment)}/...; "
        "got path '%REQ(:path)%'",
    )
    host.routes.extend([grpc, http, rest])
    return host


def _health_routes() -> list[Route]:
    """The gateway's own liveness and readiness, answered without a worker."""
    result = []
    for path, body in sorted(HEALTH_ANSWERS.items()):
        route = Route(name=f"gateway{path.replace('/', '.')}", match=RouteMatch(path=path))
        responses.json_ok(route, body)
        result.append(route)
    return result


def _grpc_header_routes(deployment: DeploymentRoute) -> list[Route]:
    named = HeaderMatcher(
        name=names.DEPLOYMENT_HEADER,
        string_match=string_pb2.StringMatcher(exact=deployment.deployment),
    )
    result = []
    for suffix, environment in _environment_matchers(deployment.environment):
        match = RouteMatch(prefix="/", grpc=RouteMatch.GrpcRouteMatchOptions())
        match.headers.extend([named, environment])
        result.append(
            _forward(
                names.route_name(deployment.key, f"grpc.header{suffix}"),
                match,
                names.cluster_name_grpc(deployment.key),
                deployment,
                grpc=True,
            )
        )
    return result


def _http_path_routes(deployment: DeploymentRoute) -> list[Route]:
    result = []
    for suffix, environment in _environment_matchers(deployment.environment):
        # Matches `/v2/models/{name}` and `/v2/models/{name}/...`, never `/v2/models/{name}x`.
        match = RouteMatch(path_separated_prefix=_model_path(deployment.deployment))
        match.headers.append(environment)
        result.append(
            _forward(
                names.route_name(deployment.key, f"http{suffix}"),
                match,
                names.cluster_name_http(deployment.key),
                deployment,
                grpc=False,
            )
        )
    return result


def _catch_all_routes() -> list[Route]:
    """Every request that named no known deployment: a clear NOT_FOUND, never a hang."""
    named = HeaderMatcher(name=names.DEPLOYMENT_HEADER, present_match=True)
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
        f"no deployment named: set metadata '{names.DEPLOYMENT_HEADER}' (and optionally "
        f"'{names.ENVIRONMENT_HEADER}', default '{DEFAULT_ENVIRONMENT}') or call "
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
        f"{MODELS_PREFIX}{{deployment}}/... (environment in header '{names.ENVIRONMENT_HEADER}')",
    )
    result.append(rest)
    return result


def _forward(
    name: str, match: RouteMatch, cluster: str, deployment: DeploymentRoute, *, grpc: bool
) -> Route:
    route = Route(name=name, match=match)
    action = route.route
    action.cluster = cluster
    action.timeout.CopyFrom(duration(deployment.request_timeout_s))
    if grpc:
        # Honour a client's shorter grpc-timeout; never let it exceed the deployment's timeout.
        action.max_stream_duration.grpc_timeout_header_max.CopyFrom(
            duration(deployment.request_timeout_s)
        )
    action.retry_policy.CopyFrom(retry_policy(deployment.retry))
    # Workers log which deployment a request was for, whichever form named it.
    route.request_headers_to_add.extend(
        [
            responses.request_header(names.DEPLOYMENT_HEADER, deployment.deployment),
            responses.request_header(names.ENVIRONMENT_HEADER, deployment.environment),
        ]
    )
    return route


def _environment_matchers(environment: str) -> Iterable[tuple[str, HeaderMatcher]]:
    """Header conditions that select `environment`; the default one also matches no header."""
    yield (
        "",
        HeaderMatcher(
            name=names.ENVIRONMENT_HEADER, string_match=string_pb2.StringMatcher(exact=environment)
        ),
    )
    if environment == DEFAULT_ENVIRONMENT:
        yield ".default-environment", _no_environment_header()


def _unknown_environment_variants() -> Iterable[tuple[str, HeaderMatcher, str]]:
    """(name suffix, condition, environment as the error shows it)."""
    yield "", HeaderMatcher(name=names.ENVIRONMENT_HEADER, present_match=True), _ENVIRONMENT
    yield ".default-environment", _no_environment_header(), DEFAULT_ENVIRONMENT


def _no_environment_header() -> HeaderMatcher:
    return HeaderMatcher(name=names.ENVIRONMENT_HEADER, present_match=False)


def _model_path(deployment: str) -> str:
    return f"{MODELS_PREFIX}{deployment}"
