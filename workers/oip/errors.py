"""Typed errors of the data plane; each adapter maps `kind` to its own status code."""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    """Protocol-neutral error classes (gRPC code / HTTP status chosen by the adapters)."""

    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    FAILED_PRECONDITION = "failed_precondition"
    PERMISSION_DENIED = "permission_denied"


class InferenceError(Exception):
    """A request failed; `str(err)` is the message the client sees."""

    kind: ErrorKind = ErrorKind.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(InferenceError):
    """The request is malformed or does not match the signature; names the tensor when known."""

    kind = ErrorKind.INVALID_ARGUMENT

    def __init__(self, message: str, tensor: str = "") -> None:
        super().__init__(message)
        self.tensor = tensor


class TensorMismatchError(InvalidInputError):
    """A tensor differs from the signature: `expected` vs `got` for one `field`."""

    def __init__(self, tensor: str, field: str, expected: str, got: str) -> None:
        super().__init__(f"input '{tensor}': expected {field} {expected}, got {got}", tensor=tensor)
        self.field = field
        self.expected = expected
        self.got = got


class ModelNotFoundError(InferenceError):
    """The request names a model (or version) this worker does not serve."""

    kind = ErrorKind.NOT_FOUND


class NotReadyError(InferenceError):
    """The worker is shutting down (or not loaded yet)."""

    kind = ErrorKind.UNAVAILABLE


class ModelExecutionError(InferenceError):
    """The model raised, or returned something that does not match its declared outputs."""

    kind = ErrorKind.INTERNAL


class OutOfMemoryBudgetError(InferenceError):
    """A model cannot be loaded without going over the worker's memory budget; the message
    names the numbers (what it needs, the budget, what holds the rest)."""

    kind = ErrorKind.RESOURCE_EXHAUSTED


class LoadFailedError(InferenceError):
    """A repository load request named a model file that does not load (or does not fit its
    signature); other models keep serving."""

    kind = ErrorKind.FAILED_PRECONDITION


class PermissionDeniedError(InferenceError):
    """The caller may not do this here: a request the gateway authorized for another
    deployment, or a repository call on a port that does not serve the repository."""

    kind = ErrorKind.PERMISSION_DENIED


class ModelLoadError(Exception):
    """The model file is missing, not TorchScript, or does not fit its signature (startup)."""


class SignatureError(ValueError):
    """The --signature document is invalid; the message names the field."""
