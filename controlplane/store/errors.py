"""Errors the store raises; the API maps each to a gRPC status."""

from __future__ import annotations

from collections.abc import Sequence

from controlplane.store.resources import ResourceKey


class StoreError(Exception):
    """Base of every store error."""


class SchemaVersionError(StoreError):
    """The database was written by a newer meshline than this one."""


class NotFoundError(StoreError):
    """The named resource does not exist."""

    def __init__(self, key: ResourceKey) -> None:
        super().__init__(f"{key} not found")
        self.key = key


class DependencyError(StoreError):
    """Deleting or changing a resource would leave others pointing at nothing."""

    def __init__(self, key: ResourceKey, dependents: Sequence[str], what: str = "") -> None:
        subject = f"{key}{' ' + what if what else ''}"
        listed = ", ".join(dependents)
        super().__init__(f"{subject} is used by {listed}; delete or change those first")
        self.key = key
        self.dependents = tuple(dependents)


class InvalidApplyError(StoreError):
    """An apply the store cannot hold consistently (duplicate or dangling references)."""
