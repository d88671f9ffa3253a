"""Regions registered by their agents: validated like an applied Region, then stored.

An agent announces its region on connect, as a kubelet registers its Node; the
announcement goes through the same checks as `meshline apply` of a Region.
"""

from __future__ import annotations

from controlplane.api.errors import ApplyError
from controlplane.api.index import ResourceIndex
from controlplane.api.validate import validate_resource
from controlplane.store import Store, wrap
from meshline.v1.resources_pb2 import Region


def register_region(store: Store, name: str, country: str) -> bool:
    """Create region `name` unless it exists (what was applied wins); True when created.

    Raises ApplyError naming the field when the agent's region name or country is invalid.
    """
    region = Region()
    region.metadata.name = name
    region.spec.country = country
    resource = wrap(region)
    errors = validate_resource(resource, 0, ResourceIndex.build(None, [resource]))
    if errors:
        raise ApplyError(errors)
    return store.ensure_region(name, country.upper())
