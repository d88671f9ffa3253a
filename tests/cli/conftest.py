"""One control plane per test module (no regions running), and a small TorchScript model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import control_plane
from workers.demo import build_mlp


@pytest.fixture(scope="module")
def cp_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cp")


@pytest.fixture(scope="module")
def address(cp_state: Path) -> Iterator[str]:
    with control_plane(cp_state) as addr:
        yield addr


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mlp(tmp_path_factory.mktemp("model") / "m.pt")
