"""Golden config.pbtxt files: worker flags in, Triton model configuration text out.

Regenerate after an intended change with
    MESHLINE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/workers/triton_worker/test_pbtxt.py
and review the diff.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from workers.demo import DEMO_SIGNATURE
from workers.oip.signature import Signature, TensorSpec
from workers.triton_worker.config import TritonWorkerConfig, parse_args
from workers.triton_worker.model_config import build_model_config, triton_version
from workers.triton_worker.pbtxt import quote

GOLDEN_DIR = Path(__file__).parent / "golden"

# Parses each file with Triton's own ModelConfig proto (from tritonclient, which cannot share a
# process with meshline's generated protos) and prints what was read.
PARSE_SCRIPT = """
import json, sys
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2
out = {}
for path in sys.argv[1:]:
    config = text_format.Parse(open(path).read(), model_config_pb2.ModelConfig())
    out[path] = json_format.MessageToDict(config)
json.dump(out, sys.stdout)
"""


def flags(signature: dict[str, object], *extra: str) -> TritonWorkerConfig:
    return parse_args(
        ["--model-name", "mnist", "--model-path", "/srv/models/mnist.pt",
         "--signature", json.dumps(signature), "--grpc-port", "9001", "--http-port", "9002",
         "--metrics-port", "9003", "--worker-id", "w-1", *extra]
    )  # fmt: skip


def batched() -> TritonWorkerConfig:
    return flags(
        DEMO_SIGNATURE,
        "--model-version", "7",
        "--max-batch-size", "8",
        "--max-batch-delay-ms", "2.5",
        "--preferred-batch-sizes", "4,8",
        "--priority-levels", "3",
        "--default-priority-level", "2",
        "--instances", "2",
    )  # fmt: skip


def not_batchable() -> TritonWorkerConfig:
    signature = {
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 224, 224]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [1, 1000]}],
    }
    return flags(signature, "--model-version", "v2", "--max-batch-size", "8")


def types() -> TritonWorkerConfig:
    """BYTES cannot come from --signature (the TorchScript backend cannot take strings), so the
    renderer's mapping is checked on a signature built directly."""
    base = flags(
        DEMO_SIGNATURE, "--max-batch-size", "2", "--priority-levels", "2", "--torch-threads", "2"
    )
    signature = Signature(
        inputs=(
            TensorSpec("text", "BYTES", (-1,)),
            TensorSpec("ids", "INT64", (-1, 16)),
            TensorSpec("mask", "BOOL", (-1, 16)),
        ),
        outputs=(TensorSpec("score", "FP16", (-1, 1)), TensorSpec("label", "UINT8", (-1,))),
    )
    return replace(
        base,
        model_name='odd "name"',
        model_path=Path('/srv/models/my "odd"\\model.pt'),
        signature=signature,
    )


CASES = {"batched": batched, "not_batchable": not_batchable, "types": types}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_golden_file(case: str) -> None:
    produced = build_model_config(CASES[case]()).render()
    golden = GOLDEN_DIR / f"{case}.pbtxt"
    if os.environ.get("MESHLINE_UPDATE_GOLDEN"):
        golden.write_text(produced)
    assert golden.exists(), f"{golden} missing: run with MESHLINE_UPDATE_GOLDEN=1"
    assert produced == golden.read_text(), (
        f"output differs from {golden.name}; if intended, regenerate with MESHLINE_UPDATE_GOLDEN=1"
    )


def test_versions_are_integer_folders() -> None:
    assert [triton_version(v) for v in ("1", "7", " 12 ", "0", "v2", "1.5", "-3", "")] == [
        1, 7, 12, 1, 1, 1, 1, 1,
    ]  # fmt: skip


def test_quote_escapes_what_text_format_needs() -> None:
    assert quote('a"b\\c\nd\te') == '"a\\"b\\\\c\\nd\\011e"'
    assert quote("näme") == '"näme"'


def test_golden_files_parse_as_triton_model_configs() -> None:
    paths = [str(GOLDEN_DIR / f"{case}.pbtxt") for case in sorted(CASES)]
    done = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, *paths], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    parsed = {Path(k).stem: v for k, v in json.loads(done.stdout).items()}
    assert parsed["batched"]["dynamicBatching"] == {
        "preferredBatchSize": [4, 8],
        "maxQueueDelayMicroseconds": "2500",
        "priorityLevels": "3",
        "defaultPriorityLevel": "2",
    }
    assert parsed["batched"]["instanceGroup"] == [{"count": 2, "kind": "KIND_CPU"}]
    assert parsed["batched"]["versionPolicy"] == {"specific": {"versions": ["7"]}}
    assert "maxBatchSize" not in parsed["not_batchable"]  # 0, the proto default
    assert "dynamicBatching" not in parsed["not_batchable"]
    types = parsed["types"]
    assert types["name"] == 'odd "name"'
    assert types["parameters"]["model_path"]["stringValue"] == '/srv/models/my "odd"\\model.pt'
    assert [t["dataType"] for t in types["input"]] == ["TYPE_STRING", "TYPE_INT64", "TYPE_BOOL"]
    assert types["input"][0]["reshape"] == {}


def test_no_batching_keeps_the_batch_dim_so_requests_of_any_size_run() -> None:
    """--max-batch-size 1 (the default) is "no batching", as in the Torch worker: Triton's
    max_batch_size 1 would refuse a request of two rows."""
    model = build_model_config(flags(DEMO_SIGNATURE))
    assert model.max_batch_size == 0 and model.dynamic_batching is None
    assert [t.dims for t in model.inputs] == [(-1, 784)]
    assert [t.dims for t in model.outputs] == [(-1, 10)]
