"""Apply-time checks of the `access` and `rate` policies: each bad value with its field path.

The numbers (`firewall.trusted_hops`, `requests_per_second`, `burst`) have their ranges in
bounds.py like every other number; this module checks names, issuers, keys, addresses, and the
two rules that hold across resources (one hop count, one key set per issuer).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Sequence

from controlplane.api.bounds import within
from controlplane.api.errors import DocumentErrors
from controlplane.api.index import ResourceIndex
from controlplane.api.jwks_checks import jwks_problems, jwks_uri_problem
from controlplane.store import KIND_DEPLOYMENT, KIND_ENVIRONMENT, ResourceKey
from controlplane.store.names import dns1123_label_problem
from meshline.v1.resources_pb2 import AccessPolicy, Firewall, JwtRule, Policy, RatePolicy
from meshline.wire import MESHLINE_ISSUER

ROLE_MAX = 63
# A claim name, or a dotted path of names into nested objects ("realm_access.roles").
_CLAIM_CHARS = re.compile(r"^[A-Za-z0-9_:.-]+$")
_CLAIM_PATH = re.compile(r"^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$")


def check_access(out: DocumentErrors, path: str, rule: AccessPolicy) -> None:
    """One access policy on its own. A policy that names nobody (no keys, roles or jwt) and is
    not anonymous is valid: it lets in any meshline API key whose scope covers the deployment."""
    _check_each(out, f"{path}.keys", rule.keys, dns1123_label_problem)
    _check_unique(out, f"{path}.keys", rule.keys, "key")
    _check_each(out, f"{path}.roles", rule.roles, _role_problem)
    _check_unique(out, f"{path}.roles", rule.roles, "role")
    first: dict[str, int] = {}
    for i, jwt in enumerate(rule.jwt):
        here = f"{path}.jwt[{i}]"
        _check_jwt(out, here, jwt)
        if jwt.issuer in first:
            out.add(
                f"{here}.issuer",
                f"issuer '{jwt.issuer}' has a rule already ({path}.jwt[{first[jwt.issuer]}]): "
                "put its audiences and claims into one rule",
            )
        first.setdefault(jwt.issuer, i)
    if rule.HasField("firewall"):
        _check_firewall(out, f"{path}.firewall", rule.firewall)


def check_rate(out: DocumentErrors, path: str, rule: RatePolicy) -> None:
    """A rate policy sets at least one limit; each limit's numbers are checked by bounds.py
    (requests_per_second above 0, burst 0 for "requests_per_second rounded up" or at least 1)."""
    if not rule.HasField("deployment") and not rule.HasField("principal"):
        out.add(path, "a rate policy sets a deployment limit, a principal limit, or both")


def cidr_problem(value: str) -> str | None:
    """None for an IPv4 or IPv6 CIDR, e.g. 10.0.0.0/8 or 2001:db8::/32; a bare address is
    accepted and means that one address (/32 or /128). A CIDR with bits set after its prefix
    (10.0.0.1/8) is refused with the network it probably meant: it is ambiguous, not a typo to
    round away silently."""
    if "%" in value:
        return f"'{value}' has an IPv6 zone (%...): a gateway compares addresses without one"
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        try:
            meant = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"'{value}' is not an IPv4 or IPv6 CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)"
        address = value.split("/")[0]
        return (
            f"'{value}' has bits set after its /{meant.prefixlen} prefix: write the network "
            f"{meant}, or {address}/{meant.max_prefixlen} for the one address"
        )
    return None


def check_access_across(
    out: DocumentErrors, path: str, rule: AccessPolicy, owner: ResourceKey, index: ResourceIndex
) -> None:
    """The rules that hold across every environment and deployment (stored and applied).

    One hop count: Envoy finds the client address once per listener (from x-forwarded-for and
    its trusted hops), before any route is chosen, so two firewalls with different non-zero
    `trusted_hops` cannot both hold. One key set per issuer: a gateway verifies an issuer's
    tokens with one JWKS, whichever deployment they call."""
    others = list(_other_access_rules(owner, index))
    hops = rule.firewall.trusted_hops
    if hops and within(rule.firewall, "trusted_hops"):
        for key, k, other in others:
            theirs = other.firewall.trusted_hops
            if theirs and theirs != hops and within(other.firewall, "trusted_hops"):
                out.add(
                    f"{path}.firewall.trusted_hops",
                    f"{hops} here, but {key} sets {theirs} "
                    f"(spec.policies[{k}].access.firewall.trusted_hops): a gateway finds the "
                    "client address once, before it chooses a route, so every firewall must use "
                    "the same hop count",
                )
                break
    for i, jwt in enumerate(rule.jwt):
        if not jwt.issuer or bool(jwt.jwks) == bool(jwt.jwks_uri):
            continue  # its own errors say enough
        source = "jwks_uri" if jwt.jwks_uri else "jwks"
        clash = next(
            (
                (key, k, m)
                for key, k, other in others
                for m, theirs in enumerate(other.jwt)
                if theirs.issuer == jwt.issuer
                and bool(theirs.jwks) != bool(theirs.jwks_uri)
                and not _same_keys(jwt, theirs)
            ),
            None,
        )
        if clash is not None:
            key, k, m = clash
            out.add(
                f"{path}.jwt[{i}].{source}",
                f"issuer '{jwt.issuer}' has other keys in {key} "
                f"(spec.policies[{k}].access.jwt[{m}]): one issuer has one set of keys; give "
                "the same jwks or jwks_uri in both",
            )


def _other_access_rules(
    owner: ResourceKey, index: ResourceIndex
) -> Iterator[tuple[ResourceKey, int, AccessPolicy]]:
    """(resource, policy index, rule) of every access policy but `owner`'s, in name order."""
    owners: list[tuple[ResourceKey, Sequence[Policy]]] = [
        (ResourceKey(KIND_ENVIRONMENT, name), env.spec.policies)
        for name, env in sorted(index.environments.items())
    ]
    owners += [
        (ResourceKey(KIND_DEPLOYMENT, name, env), dep.spec.policies)
        for (env, name), dep in sorted(index.deployments.items())
    ]
    for key, policies in owners:
        if key == owner:
            continue
        for k, policy in enumerate(policies):
            if policy.WhichOneof("rule") == "access":
                yield key, k, policy.access


def _same_keys(a: JwtRule, b: JwtRule) -> bool:
    if a.jwks_uri or b.jwks_uri:
        return a.jwks_uri == b.jwks_uri
    try:
        return bool(json.loads(a.jwks) == json.loads(b.jwks))
    except json.JSONDecodeError:
        return a.jwks == b.jwks


def _check_each(
    out: DocumentErrors, path: str, values: Sequence[str], problem: Callable[[str], str | None]
) -> None:
    for j, value in enumerate(values):
        found = problem(value)
        if found:
            out.add(f"{path}[{j}]", found)


def _check_unique(out: DocumentErrors, path: str, values: Sequence[str], what: str) -> None:
    first: dict[str, int] = {}
    for j, value in enumerate(values):
        if value in first:
            out.add(
                f"{path}[{j}]",
                f"{what} '{value}' is listed twice (first at {path}[{first[value]}])",
            )
        first.setdefault(value, j)


def _role_problem(role: str) -> str | None:
    if not role:
        return "a role must not be empty"
    if any(c.isspace() or not c.isprintable() for c in role):
        return f"role {role!r} contains whitespace or control characters"
    if len(role) > ROLE_MAX:
        return f"role '{role}' is {len(role)} characters long (at most {ROLE_MAX})"
    return None


def _check_jwt(out: DocumentErrors, path: str, rule: JwtRule) -> None:
    issuer = rule.issuer
    if not issuer:
        out.add(
            f"{path}.issuer", "issuer is required: the tokens' iss, e.g. https://sso.example.com"
        )
    elif any(c.isspace() or not c.isprintable() for c in issuer):
        out.add(f"{path}.issuer", f"issuer {issuer!r} contains whitespace or control characters")
    elif issuer == MESHLINE_ISSUER:
        out.add(
            f"{path}.issuer",
            f"'{issuer}' is the issuer of meshline's own API keys: allow API keys with keys or "
            "roles, not a jwt rule",
        )
    if rule.jwks and rule.jwks_uri:
        out.add(f"{path}.jwks_uri", "give jwks or jwks_uri, not both")
    elif not rule.jwks and not rule.jwks_uri:
        out.add(
            f"{path}.jwks",
            "a jwt rule needs the issuer's public keys: jwks (the JWKS inline) or jwks_uri",
        )
    if rule.jwks:
        for problem in jwks_problems(rule.jwks):
            out.add(f"{path}.jwks", problem)
    if rule.jwks_uri:
        uri_problem = jwks_uri_problem(rule.jwks_uri)
        if uri_problem:
            out.add(f"{path}.jwks_uri", uri_problem)
    _check_each(out, f"{path}.audiences", rule.audiences, _empty("an audience"))
    _check_unique(out, f"{path}.audiences", rule.audiences, "audience")
    for j, match in enumerate(rule.claims):
        here = f"{path}.claims[{j}]"
        claim = match.claim
        if not claim:
            out.add(f"{here}.claim", "claim is required: the claim's name, e.g. sub or groups")
        elif not _CLAIM_CHARS.match(claim):
            out.add(
                f"{here}.claim",
                f"{claim!r} is not a claim name: letters, digits, '_', '-', ':' and '.' only",
            )
        elif not _CLAIM_PATH.match(claim):
            out.add(
                f"{here}.claim",
                f"'{claim}' has an empty name between its dots (a path into objects, e.g. "
                "realm_access.roles)",
            )
        if not match.values:
            out.add(f"{here}.values", "a claim match needs at least one value")
        _check_each(out, f"{here}.values", match.values, _empty("a value"))


def _empty(what: str) -> Callable[[str], str | None]:
    def problem(value: str) -> str | None:
        return f"{what} must not be empty" if not value else None

    return problem


def _check_firewall(out: DocumentErrors, path: str, firewall: Firewall) -> None:
    for side in ("allow", "deny"):
        _check_each(out, f"{path}.{side}", getattr(firewall, side), cidr_problem)
