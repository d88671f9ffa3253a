"""What one worker of a model version was measured to use, beside the resources.

Keyed by the artifact's content (sha256) and runtime, not by the version's name: the same
file registered again under another name loads the same way, and a version re-applied with
new content is measured afresh. Written by the control plane when a serving worker of an
artifact is measured larger than recorded (its agent measured it); read by capacity admission
and shown on the version.
Status, not configuration: writing it bumps no revision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from controlplane.store.store import Store
from meshline.v1.resources_pb2 import Model, ModelVersion


@dataclass(frozen=True)
class Footprint:
    sha256: str
    runtime: str
    memory_bytes: int
    region: str  # where it was measured
    measured_at: str  # RFC 3339


def record_footprints(store: Store, footprints: Iterable[Footprint]) -> None:
    """Keep the largest measurement of each (artifact, runtime)."""
    rows = [
        (f.sha256, f.runtime, f.memory_bytes, f.region, f.measured_at)
        for f in footprints
        if f.sha256 and f.memory_bytes > 0
    ]
    if not rows:
        return
    with store.companion() as conn:
        conn.executemany(
            "INSERT INTO footprints (sha256, runtime, memory_bytes, region, measured_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (sha256, runtime) DO UPDATE SET "
            "memory_bytes = excluded.memory_bytes, region = excluded.region, "
            "measured_at = excluded.measured_at WHERE excluded.memory_bytes > memory_bytes",
            rows,
        )


def load_footprints(store: Store) -> dict[tuple[str, str], Footprint]:
    """Every footprint, by (sha256, runtime)."""
    with store.companion() as conn:
        rows = conn.execute("SELECT * FROM footprints").fetchall()
    return {
        (row["sha256"], row["runtime"]): Footprint(
            row["sha256"], row["runtime"], row["memory_bytes"], row["region"], row["measured_at"]
        )
        for row in rows
    }


def version_with_footprint(
    version: ModelVersion, measured: dict[tuple[str, str], Footprint]
) -> ModelVersion:
    """`version` as the API shows it: with its footprint when one was measured."""
    found = measured.get((version.sha256, version.runtime))
    if found is None:
        return version
    out = ModelVersion()
    out.CopyFrom(version)
    out.footprint.memory_bytes = found.memory_bytes
    out.footprint.region = found.region
    out.footprint.measured_at = found.measured_at
    return out


def with_footprints(model: Model, measured: dict[tuple[str, str], Footprint]) -> Model:
    """`model` with every measured version's footprint."""
    out = Model()
    out.CopyFrom(model)
    for i, version in enumerate(out.spec.versions):
        out.spec.versions[i].CopyFrom(version_with_footprint(version, measured))
    return out
