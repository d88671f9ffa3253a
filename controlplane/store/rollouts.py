"""Rollout history, beside the resources: written by the rollout controller, never by apply.

A row per version change; the body is the Rollout message. Saving does not bump the store's
revision (it is not user configuration); the controller triggers its own rebuild.
"""

from __future__ import annotations

from datetime import UTC, datetime

from controlplane.store.store import Store
from meshline.keys import DeploymentKey
from meshline.v1.resources_pb2 import Rollout


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def save_rollout(store: Store, rollout: Rollout) -> Rollout:
    """Insert (id 0) or update the rollout; returns it with its id and updated_at set."""
    saved = Rollout()
    saved.CopyFrom(rollout)
    saved.updated_at = now_text()
    if not saved.started_at:
        saved.started_at = saved.updated_at
    with store.companion() as conn:
        if saved.id:
            conn.execute(
                "UPDATE rollouts SET body = ? WHERE id = ?", (saved.SerializeToString(), saved.id)
            )
        else:
            cursor = conn.execute(
                "INSERT INTO rollouts (environment, deployment, body) VALUES (?, ?, ?)",
                (saved.environment, saved.deployment, b""),
            )
            saved.id = int(cursor.lastrowid or 0)
            conn.execute(
                "UPDATE rollouts SET body = ? WHERE id = ?", (saved.SerializeToString(), saved.id)
            )
    return saved


def list_rollouts(store: Store, environment: str, deployment: str) -> list[Rollout]:
    """Newest first."""
    with store.companion() as conn:
        rows = conn.execute(
            "SELECT body FROM rollouts WHERE environment = ? AND deployment = ? ORDER BY id DESC",
            (environment, deployment),
        ).fetchall()
    return [Rollout.FromString(row["body"]) for row in rows]


def latest_rollouts(store: Store) -> dict[DeploymentKey, Rollout]:
    """The newest rollout of every deployment that has one: (environment, name) → rollout."""
    with store.companion() as conn:
        rows = conn.execute(
            "SELECT body FROM rollouts WHERE id IN "
            "(SELECT MAX(id) FROM rollouts GROUP BY environment, deployment)"
        ).fetchall()
    out = {}
    for row in rows:
        rollout = Rollout.FromString(row["body"])
        out[DeploymentKey(rollout.environment, rollout.deployment)] = rollout
    return out
