"""Read YAML files into API resources, remembering where each document came from.

The server numbers documents across the whole request; users think in files, so errors
are mapped back to "FILE document N".
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
import yaml

from controlplane.api.documents import DocumentError, parse_resource_document
from controlplane.api.errors import field_errors_from_trailers
from meshline.v1 import api_pb2


class DocumentsError(Exception):
    """A file cannot be read or parsed; the message names the file."""


@dataclass(frozen=True)
class SourcedResource:
    resource: api_pb2.Resource
    source: str
    index: int  # position in its file, from 0


def read_documents(paths: list[Path]) -> list[SourcedResource]:
    out: list[SourcedResource] = []
    for path in paths:
        stdin = str(path) == "-"
        try:
            text = sys.stdin.read() if stdin else path.read_text()
        except OSError as exc:
            raise DocumentsError(f"{path}: {exc.strerror}") from None
        stream = io.StringIO(text)
        stream.name = "<stdin>" if stdin else str(path)
        try:
            docs = [d for d in yaml.safe_load_all(stream) if d is not None]
        except yaml.YAMLError as exc:
            raise DocumentsError(f"{path}: malformed YAML: {exc}") from None
        if not docs:
            raise DocumentsError(f"{path}: no documents in this file")
        base_dir = Path.cwd() if stdin else path.parent
        for i, doc in enumerate(docs):
            try:
                resource = parse_resource_document(doc, stream.name, i, base_dir=base_dir)
            except DocumentError as exc:
                raise DocumentsError(str(exc)) from None
            out.append(SourcedResource(resource, stream.name, i))
    return out


def explain_rejection(exc: grpc.RpcError, sourced: list[SourcedResource]) -> str | None:
    """The server's field errors, each prefixed with its file and document; None if it sent none."""
    errors = field_errors_from_trailers(exc.trailing_metadata())
    if not errors:
        return None
    lines = []
    for error in errors:
        where = ""
        if error.document_index is not None and error.document_index < len(sourced):
            doc = sourced[error.document_index]
            where = f"{doc.source} document {doc.index + 1}: "
        lines.append(f"{where}{error}")
    return "\n".join(lines)
