"""The world as it will be after an apply: stored resources overlaid with the request's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from controlplane.store import ResourceKey, StoreSnapshot, key_of, unwrap
from meshline.keys import DeploymentKey
from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import Deployment, Environment, Model, Region


@dataclass
class ResourceIndex:
    """Resources by name; `documents` maps the request's resources to their document index."""

    models: dict[str, Model] = field(default_factory=dict)
    environments: dict[str, Environment] = field(default_factory=dict)
    regions: dict[str, Region] = field(default_factory=dict)
    deployments: dict[tuple[str, str], Deployment] = field(default_factory=dict)  # (env, name)
    documents: dict[ResourceKey, int] = field(default_factory=dict)

    @classmethod
    def build(cls, stored: StoreSnapshot | None, resources: Sequence[Resource]) -> ResourceIndex:
        """Index `stored` then the (normalized) `resources`; the first document of a key wins."""
        index = cls()
        if stored is not None:
            for model in stored.models:
                index.models[model.metadata.name] = model
            for env in stored.environments:
                index.environments[env.metadata.name] = env
            for region in stored.regions:
                index.regions[region.metadata.name] = region
            for dep in stored.deployments:
                index.deployments[DeploymentKey(dep.spec.environment, dep.metadata.name)] = dep
        for position, resource in enumerate(resources):
            if resource.WhichOneof("kind") is None:
                continue
            key = key_of(resource)
            if key in index.documents:
                continue
            index.documents[key] = position
            obj = unwrap(resource)
            if isinstance(obj, Model):
                index.models[key.name] = obj
            elif isinstance(obj, Environment):
                index.environments[key.name] = obj
            elif isinstance(obj, Region):
                index.regions[key.name] = obj
            else:
                index.deployments[(key.environment, key.name)] = obj
        return index

    def document_of(self, key: ResourceKey) -> int | None:
        """Index of the request document for `key`, or None when it is only stored."""
        return self.documents.get(key)
