"""Receive a client-streamed artifact (PushModelVersion): header first, then bytes to a temp file.

Only the receiving is here; the servicer commits (size and sha256 checked) and registers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from controlplane.store.artifacts import ArtifactStore, Digest, Upload, digest_problem
from meshline.v1.api_pb2 import PushModelVersionHeader, PushModelVersionRequest


class UploadError(Exception):
    """The stream is not header-then-chunks, or says something impossible."""


@dataclass
class ReceivedUpload:
    header: PushModelVersionHeader
    upload: Upload

    @property
    def expected(self) -> Digest:
        return Digest(self.header.sha256, self.header.size_bytes)


def header_problem(header: PushModelVersionHeader) -> str | None:
    if not header.model:
        return "header.model: the model name is required"
    if not header.version.name:
        return "header.version.name: the version name is required"
    if problem := digest_problem(header.sha256):
        return f"header.sha256: {problem}"
    if header.size_bytes < 0:
        return f"header.size_bytes: must not be negative, got {header.size_bytes}"
    return None


async def receive_upload(
    requests: AsyncIterator[PushModelVersionRequest], artifacts: ArtifactStore
) -> ReceivedUpload:
    """Read the whole stream into a temp file of `artifacts`; UploadError (temp file gone) if
    it is malformed. The caller commits or discards the returned upload."""
    header: PushModelVersionHeader | None = None
    upload = artifacts.begin_upload()
    try:
        async for message in requests:
            which = message.WhichOneof("content")
            if header is None:
                if which != "header":
                    raise UploadError("the first message of a push must be its header")
                header = message.header
                if problem := header_problem(header):
                    raise UploadError(problem)
            elif which == "chunk":
                upload.write(message.chunk)
                if upload.size_bytes > header.size_bytes:
                    raise UploadError(
                        f"more bytes than the header announced ({header.size_bytes}): "
                        "nothing was stored"
                    )
            else:
                raise UploadError("a push has one header, then only chunks")
        if header is None:
            raise UploadError("empty push: send a header, then the artifact's bytes")
    except BaseException:
        upload.discard()
        raise
    return ReceivedUpload(header, upload)
