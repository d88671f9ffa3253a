"""Command-line parsing: the Torch worker's flags plus Triton's, and errors naming the flag."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.harness.processes import REPO_ROOT
from workers.demo import DEMO_SIGNATURE
from workers.flags import Scheduling
from workers.triton_worker.config import parse_args

BASE = [
    "--model-name", "mnist",
    "--model-path", "m.pt",
    "--signature", json.dumps(DEMO_SIGNATURE),
    "--grpc-port", "9001",
    "--http-port", "9002",
    "--metrics-port", "9003",
]  # fmt: skip


def test_full_command_line() -> None:
    config = parse_args(
        [*BASE, "--model-version", "3", "--host", "0.0.0.0", "--worker-id", "w-1",
         "--region", "eu", "--repository-dir", "/srv/repo", "--max-batch-size", "8",
         "--max-batch-delay-ms", "1.5", "--preferred-batch-sizes", "4, 8", "--priority-levels",
         "2", "--default-priority-level", "1", "--instances", "2", "--torch-threads", "2",
         "--shutdown-grace-s", "2.5", "--log-level", "WARNING"]
    )  # fmt: skip
    assert (config.model_name, config.model_version, config.model_path) == (
        "mnist",
        "3",
        Path("m.pt"),
    )
    assert (config.host, config.grpc_port, config.http_port, config.metrics_port) == (
        "0.0.0.0",
        9001,
        9002,
        9003,
    )
    assert (config.worker_id, config.region, config.repository_dir) == (
        "w-1",
        "eu",
        Path("/srv/repo"),
    )
    assert config.scheduling == Scheduling(8, 1.5, (4, 8), 2, 1, 2)
    assert (config.torch_threads, config.shutdown_grace_s) == (2, 2.5)
    assert config.log_level == "WARNING"


def test_defaults() -> None:
    config = parse_args(BASE)
    assert config.scheduling == Scheduling()
    assert config.worker_id.startswith("mnist-")
    assert config.repository_dir.parent == Path(tempfile.gettempdir())
    assert config.repository_dir.name.startswith("meshline-triton-mnist-")


def test_worker_id_is_made_safe_for_the_default_folder() -> None:
    config = parse_args([*BASE, "--worker-id", "eu/w 1"])
    assert config.repository_dir.name == "meshline-triton-eu_w_1"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # The scheduling flags' cases, shared with the Torch worker: tests/workers/test_flags.py.
        (["--metrics-port", "9001"], "--grpc-port and --metrics-port must differ"),
        (["--http-port", "9001"], "--grpc-port and --http-port must differ"),
        (["--metrics-port", "70000"], "--metrics-port: not a TCP port"),
        (["--model-name", ".."], "--model-name: invalid name"),
        (["--signature", "{"], "--signature: signature: not valid JSON"),
    ],
)  # fmt: skip
def test_bad_flags_exit_2_naming_the_flag(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args([*BASE, *extra])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_metrics_port_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert BASE[-2] == "--metrics-port"
    with pytest.raises(SystemExit):
        parse_args(BASE[:-2])
    assert "--metrics-port" in capsys.readouterr().err


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.triton_worker", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )


def test_process_exits_2_on_a_bad_flag() -> None:
    done = run_module(*BASE, "--max-batch-size", "0")
    assert done.returncode == 2
    assert "--max-batch-size: must be >= 1" in done.stderr


def test_process_exits_1_on_a_missing_model_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pt"
    args = [*BASE, "--repository-dir", str(tmp_path / "repo")]
    args[args.index("m.pt")] = str(missing)
    done = run_module(*args)
    assert done.returncode == 1
    assert f"triton_worker: error: --model-path: model file not found: {missing}" in done.stderr
    assert not (tmp_path / "repo").exists()  # nothing written before the checks pass
