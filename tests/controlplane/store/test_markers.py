"""Markers in the store's meta table: set once, their first time kept, the counters apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.store import Store
from controlplane.store.markers import mark, marked_at

T0 = 1_800_000_000.0


def test_a_marker_keeps_its_first_time_and_survives_reopening(tmp_path: Path) -> None:
    with Store.open(tmp_path / "meshline.db") as store:
        assert marked_at(store, "something_done_at") is None
        revision = store.revision
        assert mark(store, "something_done_at", T0) == int(T0)
        assert mark(store, "something_done_at", T0 + 5) == int(T0)
        assert store.revision == revision  # no configuration change
    with Store.open(tmp_path / "meshline.db") as store:
        assert marked_at(store, "something_done_at") == int(T0)


def test_the_stores_counters_are_no_markers(tmp_path: Path) -> None:
    with Store.open(tmp_path / "meshline.db") as store, pytest.raises(ValueError):
        mark(store, "revision", T0)
