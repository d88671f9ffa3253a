"""What of a model version a worker runs, as opposed to what the registry records about it."""

from __future__ import annotations

from meshline.v1.resources_pb2 import ModelVersion

# Fields the server fills in; what a user sends in them is replaced (sha256 excepted: a pin).
SERVER_FIELDS = ("size_bytes", "created_at", "framework", "artifact_path", "footprint")
# Registry metadata: what a worker runs does not depend on them (see serving_identity).
REGISTRY_FIELDS = ("sha256", *SERVER_FIELDS, "huggingface")


def serving_identity(version: ModelVersion) -> ModelVersion:
    """The version without registry metadata: what decides whether a worker is replaced.

    Why: recording sha256, size or created_at on an existing version (or on the first apply
    after an upgrade) must not restart its workers; a version's content cannot change under
    its name (registration refuses that), so the name, path, runtime and signature suffice.
    """
    copy = ModelVersion()
    copy.CopyFrom(version)
    for name in REGISTRY_FIELDS:
        copy.ClearField(name)
    return copy
