"""RBAC: the firewall and the access rules of a deployment, per route; forged forwards refused.

Three RBAC filter instances run in the public listener. `meshline.forwarded` runs first and
refuses a request that carries the hop marker: gateways forward to each other's peer listener
(mTLS), so on the public listener the marker can only be a client pretending to be a gateway.
No route switches it off. `meshline.firewall` runs next (a blocked address is refused before
anything else, credential or not); `meshline.access` runs after jwt_authn, on the verified
token's payload (dynamic metadata). All are DENY policies with names that say why, because
Envoy puts the matched policy's name into the answer's details
(`rbac_access_denied_matched_policy[caller-not-allowed]`), which the local reply shows.

Per-route configs (RDS) hold each deployment's firewall and access rules: a route config update
reaches the next request on every open connection.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TypeAlias

from envoy.config.core.v3 import address_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as rbac_filter_pb2
from envoy.type.matcher.v3 import metadata_pb2, regex_pb2, string_pb2, value_pb2
from google.protobuf import any_pb2

from controlplane.ir import names
from controlplane.ir.model import DeploymentRoute
from controlplane.policy.access import CallerRule, ClaimRule, FirewallRule, JwtCaller
from controlplane.translate import wellknown
from controlplane.translate.pb import packed, uint32
from meshline import jwk, wire

Principal: TypeAlias = rbac_pb2.Principal

BLOCKED_ADDRESS_POLICY = "client-address-blocked"
NOT_ALLOWED_POLICY = "caller-not-allowed"
FORGED_FORWARD_POLICY = "forwarded-to-public-listener"
# Where jwt_authn puts a verified token's payload (every provider: one place to read).
PAYLOAD_KEY = "jwt_payload"


def forged_forwards() -> rbac_filter_pb2.RBAC:
    """The public listener's refusal of the hop marker: only the peer listener, where a mesh
    certificate is required, takes forwarded requests."""
    config = rbac_filter_pb2.RBAC()
    config.rules.action = rbac_pb2.RBAC.DENY
    forged = _header_present(wire.HOP_HEADER)
    config.rules.policies[FORGED_FORWARD_POLICY].CopyFrom(_policy([forged]))
    return config


def empty_rules() -> rbac_filter_pb2.RBAC:
    """Allow everything: the access filter's listener-level config (routes set their own)."""
    return rbac_filter_pb2.RBAC()


def route_configs(route: DeploymentRoute) -> dict[str, any_pb2.Any]:
    """typed_per_filter_config of a route clients call (never a hop route)."""
    configs: dict[str, any_pb2.Any] = {}
    firewalls = [f for f in route.access.firewalls if f.restricts]
    if firewalls:
        configs[names.FIREWALL_FILTER] = _per_route(
            BLOCKED_ADDRESS_POLICY, [_blocked(f) for f in firewalls]
        )
    allowed = _and([_caller_rule(rule, route) for rule in route.access.callers])
    configs[names.ACCESS_FILTER] = _per_route(NOT_ALLOWED_POLICY, [_not(allowed)])
    return configs


def _per_route(policy_name: str, principals: list[Principal]) -> any_pb2.Any:
    rules = rbac_filter_pb2.RBAC()
    rules.rules.action = rbac_pb2.RBAC.DENY
    rules.rules.policies[policy_name].CopyFrom(_policy(principals))
    return packed(rbac_filter_pb2.RBACPerRoute(rbac=rules))


def _policy(principals: list[Principal]) -> rbac_pb2.Policy:
    policy = rbac_pb2.Policy()
    policy.permissions.add(any=True)
    policy.principals.extend(principals)
    return policy


# --- firewall ------------------------------------------------------------------------------


def _blocked(rule: FirewallRule) -> Principal:
    """Blocked by this rule: outside its allow list (when it has one), or in its deny list."""
    blocked = []
    if rule.allow:
        blocked.append(_not(_or([_address(c, rule.trusted_hops) for c in rule.allow])))
    if rule.deny:
        blocked.append(_or([_address(c, rule.trusted_hops) for c in rule.deny]))
    return _or(blocked)


def _address(cidr: str, trusted_hops: int) -> Principal:
    network = ipaddress.ip_network(cidr, strict=False)
    block = address_pb2.CidrRange(
        address_prefix=str(network.network_address), prefix_len=uint32(network.prefixlen)
    )
    # remote_ip is the address the listener computed from x-forwarded-for (trusted hops);
    # direct_remote_ip the peer's, whatever any header says.
    if trusted_hops:
        return Principal(remote_ip=block)
    return Principal(direct_remote_ip=block)


# --- callers -------------------------------------------------------------------------------


def _caller_rule(rule: CallerRule, route: DeploymentRoute) -> Principal:
    """A request passes the rule when it matches any of the rule's callers."""
    if rule.anonymous:
        # Everyone: no credential, or any valid one (jwt_authn already refused invalid ones);
        # a caller is never worse off for saying who it is.
        return Principal(any=True)
    options: list[Principal] = []
    if rule.names_nobody:
        options.append(_meshline_key(route))
    for key in rule.keys:
        options.append(_and([_meshline_key(route), _claim_equals(jwk.SUBJECT_CLAIM, key)]))
    for role in rule.roles:
        options.append(_and([_meshline_key(route), _claim_contains(jwk.ROLES_CLAIM, role)]))
    options.extend(_jwt_caller(caller) for caller in rule.jwt)
    return _or(options)


def _meshline_key(route: DeploymentRoute) -> Principal:
    """A meshline API key whose scope covers this deployment (claims absent = unrestricted)."""
    environment = _or(
        [
            _not(_claim_present(jwk.ENVIRONMENT_CLAIM)),
            _claim_equals(jwk.ENVIRONMENT_CLAIM, route.environment),
        ]
    )
    deployments = _or(
        [
            _not(_list_holds(jwk.DEPLOYMENTS_CLAIM, _any_string())),
            _claim_contains(jwk.DEPLOYMENTS_CLAIM, route.deployment),
        ]
    )
    return _and([_claim_equals("iss", wire.MESHLINE_ISSUER), environment, deployments])


def _jwt_caller(caller: JwtCaller) -> Principal:
    parts = [_claim_equals("iss", caller.issuer)]
    if caller.audiences:
        parts.append(_or([_string_or_list("aud", a) for a in caller.audiences]))
    parts.extend(_claim_rule(claim) for claim in caller.claims)
    return _and(parts)


def _claim_rule(claim: ClaimRule) -> Principal:
    return _or([_string_or_list(claim.claim, v) for v in claim.values])


# --- matchers ------------------------------------------------------------------------------


def _metadata(claim: str, value: value_pb2.ValueMatcher) -> Principal:
    matcher = metadata_pb2.MetadataMatcher(filter=wellknown.JWT_AUTHN_METADATA, value=value)
    matcher.path.add(key=PAYLOAD_KEY)
    for part in claim.split("."):
        matcher.path.add(key=part)
    return Principal(sourced_metadata=rbac_pb2.SourcedMetadata(metadata_matcher=matcher))


def _exact(value: str) -> value_pb2.ValueMatcher:
    return value_pb2.ValueMatcher(string_match=string_pb2.StringMatcher(exact=value))


def _any_string() -> value_pb2.ValueMatcher:
    return value_pb2.ValueMatcher(
        string_match=string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=".*"))
    )


def _claim_equals(claim: str, value: str) -> Principal:
    return _metadata(claim, _exact(value))


def _claim_present(claim: str) -> Principal:
    return _metadata(claim, value_pb2.ValueMatcher(present_match=True))


def _list_holds(claim: str, item: value_pb2.ValueMatcher) -> Principal:
    return _metadata(claim, value_pb2.ValueMatcher(list_match=value_pb2.ListMatcher(one_of=item)))


def _claim_contains(claim: str, value: str) -> Principal:
    return _list_holds(claim, _exact(value))


def _string_or_list(claim: str, value: str) -> Principal:
    """A claim that is `value`, or a list that holds it (JWT `aud` may be either)."""
    return _or([_claim_equals(claim, value), _claim_contains(claim, value)])


def _header_present(name: str) -> Principal:
    return Principal(header=route_components_pb2.HeaderMatcher(name=name, present_match=True))


def _not(principal: Principal) -> Principal:
    return Principal(not_id=principal)


def _or(principals: Iterable[Principal]) -> Principal:
    items = list(principals)
    if len(items) == 1:
        return items[0]
    if not items:
        return _not(Principal(any=True))
    return Principal(or_ids=rbac_pb2.Principal.Set(ids=items))


def _and(principals: Iterable[Principal]) -> Principal:
    items = list(principals)
    if len(items) == 1:
        return items[0]
    if not items:
        return Principal(any=True)
    return Principal(and_ids=rbac_pb2.Principal.Set(ids=items))
