"""A shared worker's inputs: a load request's model config, and the `--shared` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from workers.demo import DEMO_SIGNATURE
from workers.oip.errors import InvalidInputError
from workers.oip.signature import Signature
from workers.torch_worker.config import (
    SharedWorkerConfig,
    WorkerConfig,
    parse_command_line,
)
from workers.torch_worker.model_config import (
    ModelConfig,
    config_json,
    load_request_config,
    parse_model_config,
)

SIGNATURE = Signature.from_dict(DEMO_SIGNATURE)


def test_a_full_config() -> None:
    text = json.dumps(
        {"version": "3", "path": "/m/a.pt", "signature": DEMO_SIGNATURE, "memory_bytes": 1024}
    )
    assert parse_model_config("a", text) == ModelConfig("a", "3", Path("/m/a.pt"), SIGNATURE, 1024)


def test_defaults_and_round_trip() -> None:
    config = parse_model_config("a", {"path": "a.pt", "signature": DEMO_SIGNATURE})
    assert (config.version, config.memory_bytes) == ("1", None)
    assert parse_model_config("a", config_json(config)) == config
    assert parse_model_config("a", {"version": 7, "path": "a.pt", "signature": DEMO_SIGNATURE})


BAD: tuple[tuple[str, str, Any], ...] = (
    ("a", "config of model 'a' is not valid JSON", "{"),
    ("a", "config of model 'a' must be a JSON object", "[1]"),
    ("a", "unknown field(s) pth (known: version, path, signature, memory_bytes)", {"pth": "x"}),
    ("a", "'path' (the TorchScript file) is missing", {"signature": DEMO_SIGNATURE}),
    ("a", "'signature' (inputs and outputs) is missing", {"path": "a.pt"}),
    ("a", "unknown datatype 'FP33'", {
        "path": "a.pt",
        "signature": {"inputs": [{"name": "x", "datatype": "FP33", "shape": [1]}], "outputs": []},
    }),
    ("a", "'version' must be a non-empty string", {
        "version": "", "path": "a.pt", "signature": DEMO_SIGNATURE,
    }),
    ("a", "'memory_bytes' must be an integer", {
        "path": "a.pt", "signature": DEMO_SIGNATURE, "memory_bytes": "1Gi",
    }),
    ("a", "'memory_bytes' must be more than 0, got 0", {
        "path": "a.pt", "signature": DEMO_SIGNATURE, "memory_bytes": 0,
    }),
    ("a/b", "invalid model name 'a/b'", {"path": "a.pt", "signature": DEMO_SIGNATURE}),
    ("", "invalid model name ''", {"path": "a.pt", "signature": DEMO_SIGNATURE}),
)  # fmt: skip


@pytest.mark.parametrize(("name", "message", "document"), BAD, ids=[m for _, m, _ in BAD])
def test_a_bad_config_names_the_model_and_the_field(name: str, message: str, document: Any) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_model_config(name, document)
    assert message in info.value.message


def test_load_request_parameters() -> None:
    text = config_json(ModelConfig("a", "1", Path("a.pt"), SIGNATURE))
    assert load_request_config("a", {}) is None  # reload as it was
    assert load_request_config("a", {"config": text}) == parse_model_config("a", text)
    assert load_request_config("a", {"config": text.encode()}) == parse_model_config("a", text)
    with pytest.raises(InvalidInputError, match=r"parameter\(s\) 'file:1/model.pt' not supported"):
        load_request_config("a", {"config": text, "file:1/model.pt": b"..."})
    with pytest.raises(InvalidInputError, match="'config' must be a JSON string"):
        load_request_config("a", {"config": 5})


# ---- the command line ------------------------------------------------------------------------

PORTS = ["--grpc-port", "9001", "--http-port", "9002"]
SHARED_PORTS = [*PORTS, "--control-port", "9003"]


def test_shared_command_line(tmp_path: Path) -> None:
    config = parse_command_line(
        ["--shared", *SHARED_PORTS, "--memory-budget-bytes", "1000", "--activity-file",
         str(tmp_path / "activity.json"), "--worker-id", "w", "--instances", "2", "--no-warmup",
         "--room-wait-s", "2.5"]
    )  # fmt: skip
    assert config == SharedWorkerConfig(
        host="127.0.0.1",
        grpc_port=9001,
        http_port=9002,
        control_port=9003,
        worker_id="w",
        region="local",
        instances=2,
        warmup=False,
        memory_budget_bytes=1000,
        room_wait_s=2.5,
        activity_file=tmp_path / "activity.json",
    )


def test_without_shared_the_command_line_is_one_models() -> None:
    config = parse_command_line(
        ["--model-name", "m", "--model-path", "m.pt", "--signature", json.dumps(DEMO_SIGNATURE),
         *PORTS]
    )  # fmt: skip
    assert isinstance(config, WorkerConfig) and config.model_name == "m"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-batch-size", "8"], "batching and priority levels are off in shared mode"),
        (["--priority-levels", "2"], "batching and priority levels are off in shared mode"),
        (["--model-name", "m"], "unrecognized arguments: --model-name m"),
        (["--memory-budget-bytes", "-1"], "must be >= 0"),
        (["--activity-file", "/nowhere/at/all/a.json"], "--activity-file: no directory"),
        (["--control-http-port", "9003"], "--control-port and --control-http-port must differ"),
        (["--control-http-port", "9001"], "--grpc-port and --control-http-port must differ"),
    ],
)
def test_bad_shared_flags_exit_2_naming_the_flag(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parse_command_line(["--shared", *SHARED_PORTS, *extra])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("ports", "message"),
    [
        (PORTS, "the following arguments are required: --control-port"),
        ([*PORTS, "--control-port", "9002"], "--http-port and --control-port must differ"),
    ],
)
def test_a_shared_worker_needs_its_own_control_port(
    ports: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parse_command_line(["--shared", *ports])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_the_control_http_port_is_optional() -> None:
    config = parse_command_line(["--shared", *SHARED_PORTS, "--control-http-port", "9004"])
    assert isinstance(config, SharedWorkerConfig)
    assert (config.control_port, config.control_http_port) == (9003, 9004)
    bare = parse_command_line(["--shared", *SHARED_PORTS])
    assert isinstance(bare, SharedWorkerConfig) and bare.control_http_port is None
