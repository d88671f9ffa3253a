"""Regions registered by their agents: validated like an applied Region, then stored.

An agent announces its region on connect, as a kubelet registers its Node; the
announcement goes through the same checks as `meshline apply` of a Region.
"""

from __future__ import annotations

from controlplane.api.errors import ApplyError, FieldError
from controlplane.api.index import ResourceIndex
from controlplane.api.validate import validate_resource
from controlplane.store import Store, wrap
from meshline.v1.resources_pb2 import Region, RegionSpec


def normalized_region_spec(spec: RegionSpec) -> RegionSpec:
    """Codes upper-cased (DE, EU) and flavor lists without repeats, order kept."""
    out = RegionSpec()
    out.CopyFrom(spec)
    out.country = spec.country.upper()
    out.continent = spec.continent.upper()
    for names, given in ((out.flavors.cpu, spec.flavors.cpu), (out.flavors.gpu, spec.flavors.gpu)):
        unique = list(dict.fromkeys(given))
        del names[:]
        names.extend(unique)
    return out


def region_problems(name: str, spec: RegionSpec) -> list[FieldError]:
    """Every problem of region `name` with `spec`, as `meshline apply` would name them."""
    region = Region()
    region.metadata.name = name
    region.spec.CopyFrom(spec)
    resource = wrap(region)
    return validate_resource(resource, 0, ResourceIndex.build(None, [resource]))


def register_region(store: Store, name: str, spec: RegionSpec) -> bool:
    """Create region `name` unless it exists (what was applied wins); True when created.

    `spec` is what the agent says about its region: country, continent, flavors and
    max_replicas. Raises ApplyError naming the field when any of it is invalid.
    """
    errors = region_problems(name, spec)
    if errors:
        raise ApplyError(errors)
    return store.ensure_region(name, normalized_region_spec(spec))
