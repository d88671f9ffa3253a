"""Policies with where they came from, and the location rule's region test."""

from __future__ import annotations

from dataclasses import dataclass

from meshline.v1.resources_pb2 import Policy, Region

ORIGIN_ENVIRONMENT = "environment"
ORIGIN_DEPLOYMENT = "deployment"

MODE_MANDATORY = "mandatory"
MODE_OPTIONAL = "optional"
POLICY_MODES: tuple[str, ...] = ("", MODE_MANDATORY, MODE_OPTIONAL)


class PlacementError(ValueError):
    """The policies allow no registered region, name an unknown region, or are malformed."""


@dataclass(frozen=True)
class LocationRule:
    """Allowed regions and countries; an empty list does not restrict."""

    regions: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()

    def allows(self, region: Region) -> bool:
        if self.regions and region.metadata.name not in self.regions:
            return False
        wanted = {country.upper() for country in self.countries}
        return not wanted or region.spec.country.upper() in wanted

    def describe(self) -> str:
        parts = []
        if self.regions:
            parts.append(f"regions: [{', '.join(self.regions)}]")
        if self.countries:
            parts.append(f"countries: [{', '.join(self.countries)}]")
        return "location {" + ", ".join(parts) + "}"


@dataclass(frozen=True)
class SourcedPolicy:
    """One policy and its owner, e.g. environment 'production', mandatory."""

    origin: str  # ORIGIN_ENVIRONMENT or ORIGIN_DEPLOYMENT
    owner: str
    mode: str  # MODE_MANDATORY or MODE_OPTIONAL for environments; "" for deployments
    rule: LocationRule

    @property
    def rule_type(self) -> str:
        return "location"

    @property
    def mandatory(self) -> bool:
        return self.mode == MODE_MANDATORY

    def describe(self) -> str:
        """E.g. "environment 'production' mandatory location {regions: [eu]}"."""
        mode = f" {self.mode}" if self.mode else ""
        return f"{self.origin} '{self.owner}'{mode} {self.rule.describe()}"


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
    location = policy.location
    return SourcedPolicy(
        origin, owner, mode, LocationRule(tuple(location.regions), tuple(location.countries))
    )
