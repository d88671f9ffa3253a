"""Policies with where they came from, how each type collides, and the region tests.

`location` and `flavor` are set-valued: every applying policy of the type restricts, so they
intersect. `access` and `rate` restrict too: a mandatory environment rule and the deployment's
own must both allow (every applying rate limit holds). The other types hold one value: the
mandatory environment policy wins, otherwise the deployment's own replaces an optional
environment one.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import json_format
from google.protobuf.message import Message

from meshline.v1.resources_pb2 import FlavorSet, LocationPolicy, Policy, Region

ORIGIN_ENVIRONMENT = "environment"
ORIGIN_DEPLOYMENT = "deployment"

MODE_MANDATORY = "mandatory"
MODE_OPTIONAL = "optional"
POLICY_MODES: tuple[str, ...] = ("", MODE_MANDATORY, MODE_OPTIONAL)

POLICY_TYPES: tuple[str, ...] = (
    "location",
    "flavor",
    "routing",
    "failover",
    "offload",
    "traffic",
    "access",
    "rate",
)
SET_VALUED_TYPES: frozenset[str] = frozenset({"location", "flavor"})
# Types where a mandatory environment policy and the deployment's own both apply.
RESTRICTIVE_TYPES: frozenset[str] = SET_VALUED_TYPES | {"access", "rate"}
# Splits and mirrors name versions of one model: they belong to a deployment.
DEPLOYMENT_ONLY_TYPES: frozenset[str] = frozenset({"traffic"})


class PlacementError(ValueError):
    """The policies allow no registered region, name an unknown region, or collide."""


def compact(message: Message) -> str:
    """A one-line YAML-ish rendering, e.g. `{regions: [eu-west], deny: {countries: [US]}}`."""
    return _compact(json_format.MessageToDict(message, preserving_proto_field_name=True))


def _compact(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def location_allows(rule: LocationPolicy, region: Region) -> bool:
    name = region.metadata.name
    country = region.spec.country.upper()
    continent = region.spec.continent.upper()
    if rule.regions and name not in rule.regions:
        return False
    if rule.countries and country not in {c.upper() for c in rule.countries}:
        return False
    if rule.continents and continent not in {c.upper() for c in rule.continents}:
        return False
    deny = rule.deny
    return not (
        name in deny.regions
        or country in {c.upper() for c in deny.countries}
        or continent in {c.upper() for c in deny.continents}
    )


def flavor_allows(rule: FlavorSet, region: Region) -> bool:
    offered = region.spec.flavors
    if rule.cpu and not set(rule.cpu) & set(offered.cpu):
        return False
    return not (rule.gpu and not set(rule.gpu) & set(offered.gpu))


@dataclass(frozen=True, eq=False)
class SourcedPolicy:
    """One policy and its owner, e.g. environment 'production', mandatory."""

    origin: str  # ORIGIN_ENVIRONMENT or ORIGIN_DEPLOYMENT
    owner: str
    mode: str  # MODE_MANDATORY or MODE_OPTIONAL for environments; "" for deployments
    policy: Policy

    @property
    def rule_type(self) -> str:
        kind = self.policy.WhichOneof("rule")
        assert kind is not None
        return kind

    @property
    def rule(self) -> Message:
        message: Message = getattr(self.policy, self.rule_type)
        return message

    @property
    def mandatory(self) -> bool:
        return self.mode == MODE_MANDATORY

    @property
    def source(self) -> str:
        """E.g. "environment 'production' mandatory"."""
        mode = f" {self.mode}" if self.mode else ""
        return f"{self.origin} '{self.owner}'{mode}"

    def allows(self, region: Region) -> bool:
        """Whether this policy lets the deployment run in `region` (only set-valued types test)."""
        if self.rule_type == "location":
            return location_allows(self.policy.location, region)
        if self.rule_type == "flavor":
            return flavor_allows(self.policy.flavor, region)
        return True

    def describe(self) -> str:
        """E.g. "environment 'production' mandatory location {regions: [eu]}"."""
        return f"{self.source} {self.rule_type} {compact(self.rule)}"


def sourced(policy: Policy, origin: str, owner: str) -> SourcedPolicy:
    """Wrap a Policy message; environment modes default to optional, deployments have none."""
    kind = policy.WhichOneof("rule")
    if kind is None:
        raise PlacementError(f"{origin} '{owner}' has a policy with no rule set")
    if policy.mode not in POLICY_MODES:
        raise PlacementError(f"{origin} '{owner}' has a policy with unknown mode '{policy.mode}'")
    mode = ""
    if origin == ORIGIN_ENVIRONMENT:
        mode = policy.mode or MODE_OPTIONAL
    copy = Policy()
    copy.CopyFrom(policy)
    return SourcedPolicy(origin, owner, mode, copy)
