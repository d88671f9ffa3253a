"""Who may call a deployment, from where, how often: the `access` and `rate` policies as typed
settings, after the collision rule.

Both types restrict: every applying rule must let a request through (a mandatory environment
rule *and* the deployment's own), so the settings keep every rule with its source instead of
merging them into one. With no access policy at all, the default rule applies: any meshline
API key whose scope covers the deployment, and nobody without a credential (secure by default;
`anonymous: true` only when written).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from controlplane.policy.rules import SourcedPolicy
from meshline.v1.resources_pb2 import AccessPolicy, RateLimit

DEFAULT_SOURCE = "default (no access policy)"


@dataclass(frozen=True)
class ClaimRule:
    """A JWT claim that must hold one of `values` (a list claim: contain one)."""

    claim: str  # dotted path into the payload, e.g. "realm_access.roles"
    values: tuple[str, ...]


@dataclass(frozen=True)
class JwtCaller:
    """Callers with a JWT from one issuer, its audience among `audiences` (empty = any)."""

    issuer: str
    audiences: tuple[str, ...] = ()
    claims: tuple[ClaimRule, ...] = ()


@dataclass(frozen=True)
class CallerRule:
    """One access rule's answer to "who": a request passes the rule when it matches any entry.
    A rule that names nobody (no keys, roles or JWT callers) lets in any meshline API key in
    scope."""

    source: str
    anonymous: bool = False
    keys: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    jwt: tuple[JwtCaller, ...] = ()

    @property
    def names_nobody(self) -> bool:
        return not (self.keys or self.roles or self.jwt)


@dataclass(frozen=True)
class FirewallRule:
    """Client addresses one rule allows (empty = any) and blocks, and whose address counts."""

    source: str
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    # 0: the peer's address; N: the Nth address from the right of x-forwarded-for.
    trusted_hops: int = 0

    @property
    def restricts(self) -> bool:
        return bool(self.allow or self.deny)


@dataclass(frozen=True)
class JwtIssuer:
    """An identity provider the gateways verify tokens of: its keys inline or at a URL."""

    issuer: str
    jwks: str = ""
    jwks_uri: str = ""


@dataclass(frozen=True)
class AccessSettings:
    """Every applying access rule; a request must pass all of them."""

    callers: tuple[CallerRule, ...] = (CallerRule(DEFAULT_SOURCE),)
    firewalls: tuple[FirewallRule, ...] = ()
    # The identity providers the rules' JWT callers come from, one per issuer.
    issuers: tuple[JwtIssuer, ...] = ()

    @property
    def anonymous(self) -> bool:
        """Whether a request without a credential can pass (every rule must allow it)."""
        return all(rule.anonymous for rule in self.callers)

    @staticmethod
    def open() -> AccessSettings:
        """Anyone may call: what `access: {anonymous: true}` resolves to."""
        return AccessSettings((CallerRule("anonymous", anonymous=True),))


@dataclass(frozen=True)
class TokenBucket:
    """`requests_per_second` on average, up to `burst` at once."""

    requests_per_second: float
    burst: int

    @staticmethod
    def of(limit: RateLimit) -> TokenBucket | None:
        if limit.requests_per_second <= 0:
            return None
        burst = limit.burst or math.ceil(limit.requests_per_second)
        return TokenBucket(limit.requests_per_second, burst)

    def stricter(self, other: TokenBucket | None) -> TokenBucket:
        if other is None:
            return self
        return TokenBucket(
            min(self.requests_per_second, other.requests_per_second), min(self.burst, other.burst)
        )


@dataclass(frozen=True)
class RateSettings:
    """Token buckets on each entry gateway: all callers together, and each principal."""

    deployment: TokenBucket | None = None
    principal: TokenBucket | None = None
    sources: tuple[str, ...] = ()

    @property
    def limited(self) -> bool:
        return self.deployment is not None or self.principal is not None


def access_settings(policies: Sequence[SourcedPolicy]) -> AccessSettings:
    """The applying `access` policies (already chosen by the collision rule) as settings."""
    rules = [p for p in policies if p.rule_type == "access"]
    if not rules:
        return AccessSettings()
    callers = tuple(_caller_rule(p.source, p.policy.access) for p in rules)
    firewalls = tuple(
        FirewallRule(
            p.source,
            tuple(p.policy.access.firewall.allow),
            tuple(p.policy.access.firewall.deny),
            p.policy.access.firewall.trusted_hops,
        )
        for p in rules
        if p.policy.access.firewall.allow or p.policy.access.firewall.deny
    )
    return AccessSettings(callers, firewalls, jwt_issuers(rules))


def _caller_rule(source: str, rule: AccessPolicy) -> CallerRule:
    return CallerRule(
        source=source,
        anonymous=rule.anonymous,
        keys=tuple(rule.keys),
        roles=tuple(rule.roles),
        jwt=tuple(
            JwtCaller(
                j.issuer,
                tuple(j.audiences),
                tuple(ClaimRule(c.claim, tuple(c.values)) for c in j.claims),
            )
            for j in rule.jwt
        ),
    )


def jwt_issuers(policies: Sequence[SourcedPolicy]) -> tuple[JwtIssuer, ...]:
    """The identity providers the applying access policies name, one per issuer."""
    found: dict[str, JwtIssuer] = {}
    for policy in policies:
        if policy.rule_type != "access":
            continue
        for rule in policy.policy.access.jwt:
            found.setdefault(rule.issuer, JwtIssuer(rule.issuer, rule.jwks, rule.jwks_uri))
    return tuple(found[name] for name in sorted(found))


def rate_settings(policies: Sequence[SourcedPolicy]) -> RateSettings:
    """Every applying `rate` policy holds: per dimension, the stricter bucket wins."""
    deployment: TokenBucket | None = None
    principal: TokenBucket | None = None
    sources: list[str] = []
    for policy in policies:
        if policy.rule_type != "rate":
            continue
        sources.append(policy.source)
        rule = policy.policy.rate
        if (bucket := TokenBucket.of(rule.deployment)) is not None:
            deployment = bucket.stricter(deployment)
        if (bucket := TokenBucket.of(rule.principal)) is not None:
            principal = bucket.stricter(principal)
    return RateSettings(deployment, principal, tuple(sources))
