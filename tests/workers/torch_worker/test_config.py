"""Command-line parsing (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workers.demo import DEMO_SIGNATURE
from workers.torch_worker.config import check_model_file, parse_args
from workers.torch_worker.errors import ModelLoadError

BASE = [
    "--model-name",
    "mnist",
    "--model-path",
    "m.pt",
    "--grpc-port",
    "9001",
    "--http-port",
    "9002",
]


def test_full_command_line() -> None:
    config = parse_args(
        [*BASE, "--model-version", "3", "--signature", json.dumps(DEMO_SIGNATURE),
         "--host", "0.0.0.0", "--worker-id", "w-1", "--region", "eu", "--torch-threads", "2",
         "--shutdown-grace-s", "1.5"]
    )  # fmt: skip
    assert (config.model_name, config.model_version, config.model_path) == (
        "mnist",
        "3",
        Path("m.pt"),
    )
    assert config.signature.input_names == ["input"]
    assert (config.host, config.grpc_port, config.http_port) == ("0.0.0.0", 9001, 9002)
    assert (config.worker_id, config.region) == ("w-1", "eu")
    assert (config.torch_threads, config.shutdown_grace_s) == (2, 1.5)


def test_defaults_and_signature_file(tmp_path: Path) -> None:
    path = tmp_path / "sig.json"
    path.write_text(json.dumps(DEMO_SIGNATURE))
    config = parse_args([*BASE, "--signature-file", str(path)])
    assert config.signature.output_names == ["output"]
    assert config.model_version == "1"
    assert config.torch_threads == 1
    assert config.worker_id.startswith("mnist-")
    assert config.warmup


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "one of the arguments --signature --signature-file is required"),
        (["--signature", "{}"], "signature: 'inputs' must be a non-empty list"),
        (["--signature-file", "/nonexistent/sig.json"], "signature file /nonexistent/sig.json"),
        (["--signature", json.dumps(DEMO_SIGNATURE), "--torch-threads", "0"], "must be >= 1"),
    ],
)
def test_bad_flags_exit_2_with_a_message(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args([*BASE, *extra])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_same_port_twice_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--model-name", "m", "--model-path", "m.pt", "--grpc-port", "9001",
            "--http-port", "9001", "--signature", json.dumps(DEMO_SIGNATURE)]  # fmt: skip
    with pytest.raises(SystemExit):
        parse_args(args)
    assert "must differ" in capsys.readouterr().err


def test_check_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=f"model file not found: {tmp_path / 'x.pt'}"):
        check_model_file(tmp_path / "x.pt")
    with pytest.raises(ModelLoadError, match="model path is not a file"):
        check_model_file(tmp_path)


SIG = ["--signature", json.dumps(DEMO_SIGNATURE)]


def test_scheduling_flags() -> None:
    config = parse_args(
        [*BASE, *SIG, "--max-batch-size", "16", "--max-batch-delay-ms", "2.5",
         "--preferred-batch-sizes", "8, 4,8", "--priority-levels", "3",
         "--default-priority-level", "2", "--instances", "2"]
    )  # fmt: skip
    assert (config.max_batch_size, config.max_batch_delay_ms) == (16, 2.5)
    assert config.preferred_batch_sizes == (4, 8)
    assert (config.priority_levels, config.default_priority_level, config.instances) == (3, 2, 2)


def test_scheduling_defaults_are_no_batching_and_no_priority() -> None:
    config = parse_args([*BASE, *SIG])
    assert (config.max_batch_size, config.max_batch_delay_ms, config.preferred_batch_sizes) == (
        1,
        0.0,
        (),
    )
    assert (config.priority_levels, config.default_priority_level, config.instances) == (0, 0, 1)
    # The default level is the lowest one, also when given as 0.
    for extra in ([], ["--default-priority-level", "0"]):
        levels = parse_args([*BASE, *SIG, "--priority-levels", "4", *extra])
        assert levels.default_priority_level == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-batch-size", "0"], "argument --max-batch-size: must be >= 1: 0"),
        (["--max-batch-delay-ms", "-1"], "argument --max-batch-delay-ms: must be >= 0: -1"),
        (["--max-batch-delay-ms", "soon"], "argument --max-batch-delay-ms: not a number"),
        (
            ["--max-batch-size", "8", "--preferred-batch-sizes", "4,16"],
            "argument --preferred-batch-sizes: 16 is larger than --max-batch-size 8",
        ),
        (["--preferred-batch-sizes", "16"], "16 is larger than --max-batch-size 1"),
        (["--preferred-batch-sizes", "4,x"], "argument --preferred-batch-sizes: not an integer"),
        (["--preferred-batch-sizes", "0"], "argument --preferred-batch-sizes: must be >= 1: 0"),
        (["--priority-levels", "-1"], "argument --priority-levels: must be >= 0: -1"),
        (
            ["--priority-levels", "3", "--default-priority-level", "4"],
            "argument --default-priority-level: 4 is outside 0..3 (--priority-levels 3)",
        ),
        (["--default-priority-level", "1"], "1 is outside 0..0"),
        (["--instances", "0"], "argument --instances: must be >= 1: 0"),
    ],
)
def test_bad_scheduling_flags_exit_2_naming_the_flag(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args([*BASE, *SIG, *extra])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
