"""The four resource kinds and their keys, shared by the store and the API."""

from __future__ import annotations

from dataclasses import dataclass

from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import Deployment, Environment, Model, Region
from meshline.wire import DEFAULT_ENVIRONMENT

# The environment a deployment belongs to when it names none (also the routing default).

KIND_MODEL = "Model"
KIND_ENVIRONMENT = "Environment"
KIND_DEPLOYMENT = "Deployment"
KIND_REGION = "Region"
KINDS: tuple[str, ...] = (KIND_MODEL, KIND_ENVIRONMENT, KIND_DEPLOYMENT, KIND_REGION)
# API keys (controlplane/store/keys.py) are keyed and announced on the change feed like the
# others, but are no document kind: not in KINDS, never applied or deleted with `apply`/`delete`
# (their secrets come only from `meshline keys`).
KIND_API_KEY = "ApiKey"

# Resource.kind oneof field name -> kind name.
_FIELD_KIND = {
    "model": KIND_MODEL,
    "environment": KIND_ENVIRONMENT,
    "deployment": KIND_DEPLOYMENT,
    "region": KIND_REGION,
}
KIND_FIELD = {kind: field for field, kind in _FIELD_KIND.items()}

AnyResource = Model | Environment | Deployment | Region


@dataclass(frozen=True, order=True)
class ResourceKey:
    """Identity of a stored resource; deployments are keyed by environment and name."""

    kind: str
    name: str
    environment: str = ""

    def __str__(self) -> str:
        if self.kind == KIND_DEPLOYMENT:
            return f"deployment '{self.name}' in environment '{self.environment}'"
        if self.kind == KIND_API_KEY:
            return f"API key '{self.name}'"
        return f"{self.kind.lower()} '{self.name}'"


def kind_of(resource: Resource) -> str:
    """Kind name ("Model", ...) of a Resource; ValueError when none is set."""
    field = resource.WhichOneof("kind")
    if field is None:
        raise ValueError("resource has no kind set")
    return _FIELD_KIND[field]


def unwrap(resource: Resource) -> AnyResource:
    """The message inside a Resource."""
    inner: AnyResource = getattr(resource, KIND_FIELD[kind_of(resource)])
    return inner


def wrap(obj: AnyResource) -> Resource:
    """A Resource holding a copy of `obj`."""
    resource = Resource()
    field = KIND_FIELD[_kind_of_message(obj)]
    getattr(resource, field).CopyFrom(obj)
    return resource


def _kind_of_message(obj: AnyResource) -> str:
    return obj.DESCRIPTOR.name


def key_of(resource: Resource) -> ResourceKey:
    """Key of a (normalized) resource."""
    kind = kind_of(resource)
    inner = unwrap(resource)
    if isinstance(inner, Deployment):
        return ResourceKey(kind, inner.metadata.name, inner.spec.environment or DEFAULT_ENVIRONMENT)
    return ResourceKey(kind, inner.metadata.name)


def normalized(resource: Resource) -> Resource:
    """A copy with defaults filled in and everything the server sets cleared.

    Why: documents fetched with `get` and applied again carry timestamps and status; they are
    the server's to set, so they never count as a change.
    """
    copy = Resource()
    copy.CopyFrom(resource)
    inner = unwrap(copy)
    inner.metadata.ClearField("created_at")
    inner.metadata.ClearField("updated_at")
    inner.metadata.ClearField("generation")
    if isinstance(inner, Deployment | Region):
        inner.ClearField("status")
    if isinstance(inner, Deployment) and not inner.spec.environment:
        inner.spec.environment = DEFAULT_ENVIRONMENT
    return copy
