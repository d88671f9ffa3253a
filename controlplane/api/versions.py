"""Register the versions of applied models: find each one's bytes, check and record them.

A version's origin is a local `path`, a `huggingface` file in the local cache, or only a
`sha256` naming an artifact already in the registry (an upload). Whatever the origin, the bytes
are copied into the content-addressed artifact store, and the version records `sha256`,
`size_bytes`, `framework`, `created_at` and the `artifact_path` workers load.

Versions are immutable: a version that was registered with one content and is applied again
with another (the file at its path changed, a HuggingFace ref moved) is an apply error, never a
silent change of what runs under its name.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from controlplane.api.errors import ApplyError, FieldError
from controlplane.registry.framework import detect_framework
from controlplane.registry.huggingface import HuggingFaceError, resolve_cached
from controlplane.registry.identity import SERVER_FIELDS
from controlplane.store import KIND_MODEL, StoreSnapshot
from controlplane.store.artifacts import ArtifactError, ArtifactStore, Digest, hash_file
from controlplane.store.artifacts import digest_problem as sha_problem
from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import ModelVersion


class _Problem(Exception):
    """One problem with one field of a version."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def register_versions(
    documents: Sequence[Resource],
    stored: StoreSnapshot,
    artifacts: ArtifactStore,
    dry_run: bool = False,
) -> tuple[Resource, ...]:
    """`documents` with every model version registered; ApplyError listing every problem.

    With `dry_run` the bytes are hashed but not copied, so nothing is left behind.
    """
    previous = {(m.metadata.name, v.name): v for m in stored.models for v in m.spec.versions}
    errors: list[FieldError] = []
    out = []
    for position, doc in enumerate(documents):
        if doc.WhichOneof("kind") != "model":
            out.append(doc)
            continue
        copy = Resource()
        copy.CopyFrom(doc)
        model = copy.model
        for i, version in enumerate(model.spec.versions):
            try:
                _register(
                    version, previous.get((model.metadata.name, version.name)), artifacts, dry_run
                )
            except _Problem as problem:
                errors.append(
                    FieldError(
                        position,
                        KIND_MODEL,
                        model.metadata.name,
                        f"spec.versions[{i}].{problem.field}",
                        problem.message,
                        f"version '{version.name}'",
                    )
                )
        out.append(copy)
    if errors:
        raise ApplyError(errors)
    return tuple(out)


def _register(
    version: ModelVersion,
    previous: ModelVersion | None,
    artifacts: ArtifactStore,
    dry_run: bool,
) -> None:
    for name in SERVER_FIELDS:
        version.ClearField(name)  # the server's to set, e.g. from a `get -o yaml` document
    if version.HasField("external"):
        if version.sha256:
            raise _Problem("sha256", "an external Triton serves its own model: it has no artifact")
        version.created_at = previous.created_at if previous and previous.created_at else _now()
        return
    digest = _digest(version, previous, artifacts, dry_run)
    if previous is not None and previous.sha256 and previous.sha256 != digest.sha256:
        raise _Problem(
            _origin_field(version),
            f"versions are immutable: '{version.name}' was registered with sha256 "
            f"{previous.sha256} ({previous.created_at}), its {_origin_name(version)} now has "
            f"sha256 {digest.sha256}; register the new content as a new version",
        )
    artifact = artifacts.path_of(digest.sha256)
    version.sha256 = digest.sha256
    version.size_bytes = digest.size_bytes
    same = previous is not None and previous.sha256 == digest.sha256
    version.created_at = previous.created_at if same and previous else _now()
    version.framework = (
        previous.framework
        if same and previous and previous.framework
        else detect_framework(artifact if artifact.is_file() else _source(version))
    )
    version.artifact_path = str(artifact)


def _digest(
    version: ModelVersion, previous: ModelVersion | None, artifacts: ArtifactStore, dry_run: bool
) -> Digest:
    """The digest of the version's bytes, copied into the store unless `dry_run`."""
    pinned = version.sha256
    if pinned:
        if problem := sha_problem(pinned):
            raise _Problem("sha256", problem)
        if artifacts.exists(pinned):
            return _check_stored(pinned, previous, artifacts)
    if not version.path and not version.HasField("huggingface"):
        if pinned:
            raise _Problem(
                "sha256",
                f"artifact sha256:{pinned} is not in the registry; push it first "
                "(`meshline models push FILE`) or give its path",
            )
        raise _Problem("path", "path is required (or huggingface, or sha256 of a pushed artifact)")
    source = _source(version)
    try:
        digest = hash_file(source)
        if pinned and digest.sha256 != pinned:
            raise _Problem(
                "sha256",
                f"checksum mismatch: expected sha256 {pinned}, {source} has {digest.sha256}",
            )
        if dry_run:
            return digest
        copied = artifacts.add_file(source)
    except OSError as exc:
        raise _Problem(_origin_field(version), f"cannot read {source}: {exc}") from None
    if copied != digest:
        raise _Problem(_origin_field(version), f"{source} changed while it was being read")
    return copied


def _check_stored(sha256: str, previous: ModelVersion | None, artifacts: ArtifactStore) -> Digest:
    """An artifact already in the registry: re-hashed when newly referenced, else sized."""
    path = artifacts.path_of(sha256)
    try:
        if previous is not None and previous.sha256 == sha256 and previous.size_bytes:
            size = path.stat().st_size
            if size != previous.size_bytes:
                raise ArtifactError(
                    f"artifact {path} is corrupted: {size} bytes, registered with "
                    f"{previous.size_bytes}"
                )
            return Digest(sha256, size)
        return artifacts.verify(sha256)
    except (ArtifactError, OSError) as exc:
        raise _Problem("sha256", str(exc)) from None


def _source(version: ModelVersion) -> Path:
    if version.HasField("huggingface"):
        try:
            return resolve_cached(version.huggingface)
        except HuggingFaceError as exc:
            raise _Problem("huggingface", str(exc)) from None
    return Path(version.path)


def _origin_field(version: ModelVersion) -> str:
    if version.HasField("huggingface"):
        return "huggingface"
    return "path" if version.path else "sha256"


def _origin_name(version: ModelVersion) -> str:
    if version.HasField("huggingface"):
        hf = version.huggingface
        return f"huggingface file {hf.repo_id}/{hf.filename}@{hf.revision or 'main'}"
    return f"file {version.path}" if version.path else "artifact"
