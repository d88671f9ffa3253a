"""The model-file check both runtimes run at start-up (in process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.oip.errors import ModelLoadError
from workers.oip.model_file import check_model_file


def test_check_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=f"model file not found: {tmp_path / 'x.pt'}"):
        check_model_file(tmp_path / "x.pt")
    with pytest.raises(ModelLoadError, match="model path is not a file"):
        check_model_file(tmp_path)
