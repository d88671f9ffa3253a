"""Golden files: IR in, Envoy resources (YAML) out, compared with golden/{case}.yaml.

After an intended change to the output, regenerate the files and review the diff:

    MESHLINE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/controlplane/translate/test_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from controlplane.translate import translate_gateway
from controlplane.translate.dump import resources_to_yaml
from tests.controlplane.translate.cases import CASES

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MESHLINE_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_golden_file(case: str) -> None:
    produced = resources_to_yaml(translate_gateway(CASES[case]))
    golden = GOLDEN_DIR / f"{case}.yaml"
    if UPDATE:
        golden.write_text(produced)
    assert golden.exists(), f"{golden} missing: run with MESHLINE_UPDATE_GOLDEN=1"
    assert produced == golden.read_text(), (
        f"output differs from {golden.name}; if intended, regenerate with MESHLINE_UPDATE_GOLDEN=1"
    )


def test_no_stale_golden_files() -> None:
    assert sorted(p.stem for p in GOLDEN_DIR.glob("*.yaml")) == sorted(CASES)
