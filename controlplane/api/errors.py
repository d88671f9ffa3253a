"""Field-precise validation errors, collected rather than stopping at the first."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

# Trailing metadata of an INVALID_ARGUMENT Apply: the FieldErrors as JSON, for clients that
# map document indexes back to their files.
FIELD_ERRORS_METADATA_KEY = "meshline-field-errors-bin"


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of one document.

    `document_index` is the position in the apply request (from 0), or None for a stored
    resource that the request would break.
    """

    document_index: int | None
    kind: str
    name: str
    field_path: str
    message: str
    context: str = ""  # narrows the subject, e.g. "version 'v2'"

    def __str__(self) -> str:
        if self.kind:
            subject = f"{self.kind.lower()} '{self.name}'"
        else:
            position = "" if self.document_index is None else f" #{self.document_index + 1}"
            subject = f"document{position}"
        if self.context:
            subject += f" {self.context}"
        path = f"{self.field_path}: " if self.field_path else ""
        return f"{subject}: {path}{self.message}"


def _order(error: FieldError) -> tuple[int, int]:
    index = error.document_index
    return (1, 0) if index is None else (0, index)


class ApplyError(Exception):
    """Every problem found in an apply request; nothing of it was stored."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors: list[FieldError] = sorted(errors, key=_order)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


def encode_field_errors(errors: Sequence[FieldError]) -> bytes:
    return json.dumps([asdict(error) for error in errors]).encode()


def field_errors_from_trailers(
    metadata: Iterable[tuple[str, str | bytes]] | None,
) -> list[FieldError]:
    """FieldErrors carried by a failed Apply's trailing metadata (empty when there are none)."""
    for key, value in metadata or ():
        if key == FIELD_ERRORS_METADATA_KEY:
            raw = value if isinstance(value, bytes) else value.encode()
            return [FieldError(**item) for item in json.loads(raw)]
    return []


@dataclass
class DocumentErrors:
    """Errors of one document, with its identity filled in."""

    document_index: int | None
    kind: str
    name: str
    errors: list[FieldError] = field(default_factory=list)

    def add(self, path: str, message: str, context: str = "") -> None:
        self.errors.append(
            FieldError(self.document_index, self.kind, self.name, path, message, context)
        )
