"""One-time facts about a store, kept in its `meta` table beside the counters: that something
happened once (e.g. the first admin key was made), and when (epoch seconds).

A marker is written once and never changed: `mark` keeps the first time. Setting one is no
configuration change (no revision bump, nothing on the change feed).
"""

from __future__ import annotations

from controlplane.store.store import Store

# The control plane made its first admin key (api/bootstrap.py): it never makes one by itself
# again.
ADMIN_BOOTSTRAPPED = "admin_bootstrapped_at"
# Keys the store itself uses in `meta`: never a marker.
_RESERVED = frozenset({"boot_epoch", "revision"})


def marked_at(store: Store, marker: str) -> int | None:
    """When `marker` was set (epoch seconds), or None when it never was."""
    with store.companion() as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (marker,)).fetchone()
    return None if row is None else int(row[0])


def mark(store: Store, marker: str, now: float) -> int:
    """Set `marker` unless it is set; returns its time (the first one)."""
    if marker in _RESERVED:
        raise ValueError(f"{marker!r} is the store's own counter, not a marker")
    with store.companion() as conn:
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (marker, int(now)))
        return int(conn.execute("SELECT value FROM meta WHERE key = ?", (marker,)).fetchone()[0])
