"""Command-line parsing (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workers.demo import DEMO_SIGNATURE
from workers.flags import Scheduling
from workers.torch_worker.config import parse_args

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


SIG = ["--signature", json.dumps(DEMO_SIGNATURE)]


def test_scheduling_flags() -> None:
    config = parse_args(
        [*BASE, *SIG, "--max-batch-size", "16", "--max-batch-delay-ms", "2.5",
         "--preferred-batch-sizes", "8, 4,8", "--priority-levels", "3",
         "--default-priority-level", "2", "--instances", "2"]
    )  # fmt: skip
    assert config.scheduling == Scheduling(16, 2.5, (4, 8), 3, 2, 2)


def test_scheduling_defaults_are_no_batching_and_no_priority() -> None:
    assert parse_args([*BASE, *SIG]).scheduling == Scheduling(1, 0.0, (), 0, 0, 1)
    # Bad scheduling flags and the default level's resolution: tests/workers/test_flags.py.
