"""Durable store of the resources users manage (SQLite), with a change feed."""

from controlplane.store.changes import (
    CONFIGURED,
    CREATED,
    DELETED,
    UNCHANGED,
    Change,
    ChangeEvent,
    Listener,
)
from controlplane.store.errors import (
    DependencyError,
    InvalidApplyError,
    NotFoundError,
    SchemaVersionError,
    StoreError,
)
from controlplane.store.resources import (
    DEFAULT_ENVIRONMENT,
    KIND_DEPLOYMENT,
    KIND_ENVIRONMENT,
    KIND_MODEL,
    KIND_REGION,
    KINDS,
    AnyResource,
    ResourceKey,
    key_of,
    kind_of,
    normalized,
    unwrap,
    wrap,
)
from controlplane.store.schema import MIGRATIONS, Migration
from controlplane.store.store import ApplyResult, Store, StoreSnapshot

__all__ = [
    "CONFIGURED",
    "CREATED",
    "DEFAULT_ENVIRONMENT",
    "DELETED",
    "KINDS",
    "KIND_DEPLOYMENT",
    "KIND_ENVIRONMENT",
    "KIND_MODEL",
    "KIND_REGION",
    "MIGRATIONS",
    "UNCHANGED",
    "AnyResource",
    "ApplyResult",
    "Change",
    "ChangeEvent",
    "DependencyError",
    "InvalidApplyError",
    "Listener",
    "Migration",
    "NotFoundError",
    "ResourceKey",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "StoreSnapshot",
    "key_of",
    "kind_of",
    "normalized",
    "unwrap",
    "wrap",
]
