"""Checks of policy rules and region facts: field by field, with the path of each problem."""

from __future__ import annotations

import re
from collections.abc import Sequence

from controlplane.api.access_checks import check_access, check_access_across, check_rate
from controlplane.api.bounds import within
from controlplane.api.errors import DocumentErrors
from controlplane.api.index import ResourceIndex
from controlplane.policy import (
    DEPLOYMENT_ONLY_TYPES,
    MODE_MANDATORY,
    MODE_OPTIONAL,
    POLICY_MODES,
    POLICY_TYPES,
)
from controlplane.policy.settings import (
    PREFERENCE_ORDERED,
    PREFERENCES,
    RETRY_CONDITIONS,
    STRATEGIES,
    RoutingSettings,
)
from controlplane.store import KIND_DEPLOYMENT, KIND_ENVIRONMENT, ResourceKey
from meshline.quantity import MemoryBudget, QuantityError, parse_memory_budget
from meshline.v1.resources_pb2 import (
    Deployment,
    FailoverPolicy,
    FlavorSet,
    LocationPolicy,
    LocationSelector,
    OffloadPolicy,
    Policy,
    Region,
    RoutingPolicy,
    TrafficPolicy,
)

_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_FLAVOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
CONTINENTS: frozenset[str] = frozenset({"AF", "AN", "AS", "EU", "NA", "OC", "SA"})


def check_policies(
    out: DocumentErrors,
    policies: Sequence[Policy],
    index: ResourceIndex,
    *,
    on_environment: bool,
    deployment: Deployment | None = None,
) -> None:
    seen_types: dict[str, int] = {}
    # Whose policies these are, for the rules across resources.
    owner = (
        ResourceKey(KIND_ENVIRONMENT, out.name)
        if deployment is None
        else ResourceKey(KIND_DEPLOYMENT, deployment.metadata.name, deployment.spec.environment)
    )
    for i, policy in enumerate(policies):
        path = f"spec.policies[{i}]"
        if on_environment and policy.mode not in POLICY_MODES:
            out.add(
                f"{path}.mode",
                f"unknown mode '{policy.mode}' (expected {MODE_MANDATORY} or {MODE_OPTIONAL})",
            )
        elif not on_environment and policy.mode:
            out.add(f"{path}.mode", "mode is set on environment policies only")
        rule = policy.WhichOneof("rule")
        if rule is None:
            out.add(path, f"a policy needs a rule ({', '.join(POLICY_TYPES)})")
            continue
        if rule in seen_types:
            out.add(
                f"{path}.{rule}",
                f"a second {rule} policy (first at spec.policies[{seen_types[rule]}]); "
                "put it into one policy",
            )
        seen_types.setdefault(rule, i)
        here = f"{path}.{rule}"
        if on_environment and rule in DEPLOYMENT_ONLY_TYPES:
            out.add(here, f"a {rule} policy names model versions: set it on a deployment")
            continue
        if rule == "location":
            _check_location(out, here, policy.location, index)
        elif rule == "flavor":
            _check_flavor_set(out, here, policy.flavor, require=True)
        elif rule == "routing":
            _check_routing(out, here, policy.routing, index)
        elif rule == "failover":
            _check_failover(out, here, policy.failover, index)
        elif rule == "offload":
            _check_offload(out, here, policy.offload, index)
        elif rule == "access":
            check_access(out, here, policy.access)
            check_access_across(out, here, policy.access, owner, index)
        elif rule == "rate":
            check_rate(out, here, policy.rate)
        elif rule == "traffic" and deployment is not None:
            _check_traffic(out, here, policy.traffic, deployment, index)


def _check_regions_known(
    out: DocumentErrors, path: str, regions: Sequence[str], index: ResourceIndex
) -> None:
    for j, region in enumerate(regions):
        if region not in index.regions:
            known = ", ".join(sorted(index.regions)) or "none"
            out.add(f"{path}[{j}]", f"unknown region '{region}' (registered: {known})")


def _check_places(
    out: DocumentErrors, path: str, rule: LocationPolicy | LocationSelector, index: ResourceIndex
) -> None:
    _check_regions_known(out, f"{path}.regions", rule.regions, index)
    for j, country in enumerate(rule.countries):
        if not _COUNTRY.match(country):
            out.add(
                f"{path}.countries[{j}]",
                f"'{country}' is not an ISO 3166-1 alpha-2 country code such as DE",
            )
    for j, continent in enumerate(rule.continents):
        if continent.upper() not in CONTINENTS:
            out.add(
                f"{path}.continents[{j}]",
                f"'{continent}' is not a continent code ({', '.join(sorted(CONTINENTS))})",
            )


def _check_location(
    out: DocumentErrors, path: str, rule: LocationPolicy, index: ResourceIndex
) -> None:
    _check_places(out, path, rule, index)
    _check_places(out, f"{path}.deny", rule.deny, index)


def _check_flavor_set(out: DocumentErrors, path: str, flavors: FlavorSet, *, require: bool) -> None:
    if flavors.cpu and flavors.gpu and require:
        out.add(
            path,
            "lists CPU flavors and GPU flavors: a deployment runs on one or the other; "
            "use two deployments for both",
        )
    if require and not flavors.cpu and not flavors.gpu:
        out.add(path, "a flavor policy lists cpu or gpu flavors")
    for kind in ("cpu", "gpu"):
        for j, name in enumerate(getattr(flavors, kind)):
            if not _FLAVOR.match(name):
                out.add(
                    f"{path}.{kind}[{j}]",
                    f"'{name}' is not a flavor name (letters, digits, '.', '_', '-')",
                )


def _check_routing(
    out: DocumentErrors, path: str, rule: RoutingPolicy, index: ResourceIndex
) -> None:
    if rule.strategy and rule.strategy not in STRATEGIES:
        out.add(
            f"{path}.strategy",
            f"unknown strategy '{rule.strategy}' (expected one of {', '.join(STRATEGIES)})",
        )
    if rule.strategy == "ring_hash" and not rule.hash_header:
        out.add(f"{path}.hash_header", "ring_hash needs hash_header: the header to hash on")
    elif rule.hash_header and rule.strategy != "ring_hash":
        out.add(f"{path}.hash_header", "hash_header applies only to strategy ring_hash")
    if rule.hash_header and not _HEADER.match(rule.hash_header):
        out.add(f"{path}.hash_header", f"'{rule.hash_header}' is not a valid header name")
    retries = rule.retries
    # An unset timeout is the default one, which a longer per-try timeout would exceed too.
    timeout = rule.timeout_s or RoutingSettings().timeout_s
    in_range = within(rule, "timeout_s") and within(retries, "per_try_timeout_s")
    if in_range and retries.per_try_timeout_s > timeout:
        default = "" if rule.timeout_s else " (the default)"
        out.add(
            f"{path}.retries.per_try_timeout_s",
            f"{retries.per_try_timeout_s} s is longer than the request timeout {timeout} s"
            f"{default}",
        )
    for j, condition in enumerate(retries.retry_on):
        if condition not in RETRY_CONDITIONS:
            out.add(
                f"{path}.retries.retry_on[{j}]",
                f"unknown retry condition '{condition}' "
                f"(expected one of {', '.join(sorted(RETRY_CONDITIONS))})",
            )
    if rule.region_preference and rule.region_preference not in PREFERENCES:
        out.add(
            f"{path}.region_preference",
            f"unknown preference '{rule.region_preference}' "
            f"(expected one of {', '.join(PREFERENCES)})",
        )
    if rule.region_order and rule.region_preference != PREFERENCE_ORDERED:
        out.add(f"{path}.region_order", "region_order needs region_preference: ordered")
    if rule.region_preference == PREFERENCE_ORDERED and not rule.region_order:
        out.add(f"{path}.region_order", "region_preference ordered needs a region_order")
    _check_regions_known(out, f"{path}.region_order", rule.region_order, index)


def _check_failover(
    out: DocumentErrors, path: str, rule: FailoverPolicy, index: ResourceIndex
) -> None:
    _check_regions_known(out, f"{path}.regions", rule.regions, index)
    if rule.disabled and rule.regions:
        out.add(f"{path}.regions", "failover is disabled: it takes no regions")


def _check_offload(
    out: DocumentErrors, path: str, rule: OffloadPolicy, index: ResourceIndex
) -> None:
    _check_regions_known(out, f"{path}.regions", rule.regions, index)


def _check_traffic(
    out: DocumentErrors, path: str, rule: TrafficPolicy, dep: Deployment, index: ResourceIndex
) -> None:
    model = index.models.get(dep.spec.model)
    versions = [v.name for v in model.spec.versions] if model is not None else None
    listed = ", ".join(versions or []) or "none"
    seen: set[str] = set()
    for j, leg in enumerate(rule.split):
        here = f"{path}.split[{j}]"
        if versions is not None and leg.version not in versions:
            out.add(
                f"{here}.version",
                f"model '{dep.spec.model}' has no version '{leg.version}' (versions: {listed})",
            )
        if leg.version in seen:
            out.add(f"{here}.version", f"version '{leg.version}' is split twice")
        seen.add(leg.version)
    if rule.split:
        total = sum(leg.weight for leg in rule.split)
        if all(within(leg, "weight") for leg in rule.split) and total != 100:
            out.add(f"{path}.split", f"weights add up to {total}, not 100")
        if dep.spec.version not in seen:
            out.add(
                f"{path}.split",
                f"the split does not include the deployment's own version "
                f"'{dep.spec.version}' (spec.version); give it a weight, 0 is allowed",
            )
    mirror = rule.mirror
    if mirror.version or mirror.percent:
        if versions is not None and mirror.version not in versions:
            out.add(
                f"{path}.mirror.version",
                f"model '{dep.spec.model}' has no version '{mirror.version}' (versions: {listed})",
            )
        elif mirror.version == dep.spec.version:
            out.add(
                f"{path}.mirror.version",
                f"mirrors the deployment's own version '{mirror.version}' to itself",
            )
        elif any(leg.version == mirror.version and leg.weight > 0 for leg in rule.split):
            out.add(
                f"{path}.mirror.version",
                f"version '{mirror.version}' already gets a share of the split: mirroring it "
                "too would run some requests on it twice",
            )
    if not rule.split and not (mirror.version or mirror.percent):
        out.add(path, "a traffic policy sets a split, a mirror, or both")


def check_region(out: DocumentErrors, region: Region) -> None:
    spec = region.spec
    if spec.country and not _COUNTRY.match(spec.country):
        out.add(
            "spec.country", f"'{spec.country}' is not an ISO 3166-1 alpha-2 country code such as DE"
        )
    if spec.continent and spec.continent.upper() not in CONTINENTS:
        out.add(
            "spec.continent",
            f"'{spec.continent}' is not a continent code ({', '.join(sorted(CONTINENTS))})",
        )
    _check_flavor_set(out, "spec.flavors", spec.flavors, require=False)
    try:
        parse_memory_budget(spec.memory_budget, MemoryBudget(share=1.0))
    except QuantityError as exc:
        out.add("spec.memory_budget", str(exc))
