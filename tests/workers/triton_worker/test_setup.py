"""What happens before the exec: repository, backend directory, command line and environment."""

from __future__ import annotations

import json
import os
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

import pytest

from workers.demo import DEMO_SIGNATURE
from workers.triton_worker import install, main
from workers.triton_worker.backend import MODEL_FILE
from workers.triton_worker.backends import prepare_backend_directory
from workers.triton_worker.config import parse_args
from workers.triton_worker.errors import TritonSetupError
from workers.triton_worker.install import STUB_NAME, TritonInstall
from workers.triton_worker.launch import server_env, server_launch
from workers.triton_worker.model_config import build_model_config
from workers.triton_worker.repository import MARKER, ForeignDirectoryError, write_repository


def args(tmp_path: Path, *extra: str) -> list[str]:
    model = tmp_path / "m.pt"
    model.write_bytes(b"not read before the exec")
    return [
        "--model-name", "mnist", "--model-path", str(model),
        "--signature", json.dumps(DEMO_SIGNATURE), "--grpc-port", "9001", "--http-port", "9002",
        "--metrics-port", "9003", "--worker-id", "w-1",
        "--repository-dir", str(tmp_path / "repo"), *extra,
    ]  # fmt: skip


def fake_install(root: Path, versions: tuple[str, ...]) -> TritonInstall:
    """pytriton's tritonserver folder layout, with empty files."""
    found = TritonInstall(root)
    for path in (found.binary, found.backend_library, found.backend_utils):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    for version in versions:
        stub = root / "python_backend_stubs" / version / STUB_NAME
        stub.parent.mkdir(parents=True)
        stub.write_text("")
    return found


def test_repository_layout(tmp_path: Path) -> None:
    config = parse_args(args(tmp_path, "--model-version", "4"))
    model_dir = write_repository(config.repository_dir, build_model_config(config))
    assert model_dir == tmp_path / "repo" / "mnist"
    assert (model_dir / "config.pbtxt").read_text().startswith('name: "mnist"\n')
    assert (model_dir / "4" / "model.py").read_text() == MODEL_FILE.read_text()
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == [MARKER, "mnist"]


def test_repository_is_rewritten_at_each_start(tmp_path: Path) -> None:
    first = parse_args(args(tmp_path, "--model-version", "4"))
    write_repository(first.repository_dir, build_model_config(first))
    renamed = parse_args([*args(tmp_path), "--model-name", "other"])
    write_repository(renamed.repository_dir, build_model_config(renamed))
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == [MARKER, "other"]


def test_a_foreign_folder_is_not_wiped(tmp_path: Path) -> None:
    mine = tmp_path / "repo" / "precious.txt"
    mine.parent.mkdir()
    mine.write_text("keep me")
    config = parse_args(args(tmp_path))
    with pytest.raises(ForeignDirectoryError, match=r"--repository-dir: .* is not empty"):
        write_repository(config.repository_dir, build_model_config(config))
    assert mine.read_text() == "keep me"


def test_main_exits_2_for_a_foreign_repository_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "x").write_text("")
    assert main.main(args(tmp_path), execve=lambda *a: pytest.fail("exec'd")) == 2
    assert "--repository-dir" in capsys.readouterr().err


def test_backend_directory_links_the_stub_of_this_python(tmp_path: Path) -> None:
    found = fake_install(tmp_path / "triton", ("3.10", "3.11"))
    target = prepare_backend_directory(found, "3.11", base=tmp_path / "backends")
    python = target / "python"
    assert os.readlink(python / STUB_NAME) == str(found.stub("3.11"))
    assert os.readlink(python / "libtriton_python.so") == str(found.backend_library)
    assert os.readlink(python / "triton_python_backend_utils.py") == str(found.backend_utils)
    again = prepare_backend_directory(found, "3.11", base=tmp_path / "backends")
    assert again == target
    assert [p.name for p in (tmp_path / "backends").iterdir()] == [target.name]  # no leftovers


def test_a_broken_backend_directory_is_replaced(tmp_path: Path) -> None:
    found = fake_install(tmp_path / "triton", ("3.11",))
    target = prepare_backend_directory(found, "3.11", base=tmp_path / "backends")
    (target / "python" / STUB_NAME).unlink()
    assert prepare_backend_directory(found, "3.11", base=tmp_path / "backends") == target
    assert (target / "python" / STUB_NAME).is_symlink()


def test_missing_stub_names_the_python_version(tmp_path: Path) -> None:
    found = fake_install(tmp_path / "triton", ("3.10", "3.12"))
    with pytest.raises(TritonSetupError, match=r"no Triton Python backend stub for Python 3\.11 "):
        prepare_backend_directory(found, "3.11", base=tmp_path / "backends")
    with pytest.raises(TritonSetupError, match=r"stubs exist for: 3\.10, 3\.12"):
        found.stub("3.11")


def test_the_installed_triton_has_a_stub_for_this_python() -> None:
    found = install.find_install()
    assert found.stub(install.python_version()).is_file()
    assert found.binary.is_file()


def test_command_line(tmp_path: Path) -> None:
    config = parse_args(args(tmp_path, "--host", "127.0.0.2", "--shutdown-grace-s", "2.5"))
    found = TritonInstall(tmp_path / "triton")
    plan = server_launch(config, found, tmp_path / "backends", base_env={})
    assert plan.binary == found.binary
    assert plan.argv == (
        str(found.binary),
        f"--model-repository={tmp_path / 'repo'}",
        f"--backend-directory={tmp_path / 'backends'}",
        f"--cache-directory={found.root / 'caches'}",
        "--http-address=127.0.0.2",
        "--http-port=9002",
        "--grpc-address=127.0.0.2",
        "--grpc-port=9001",
        "--metrics-address=127.0.0.2",
        "--metrics-port=9003",
        "--allow-gpu-metrics=false",
        "--disable-auto-complete-config",
        "--exit-timeout-secs=3",
        "--strict-readiness=true",
        "--id=w-1",
        "--log-verbose=0",
    )


def test_environment_puts_this_interpreter_first() -> None:
    env = server_env({"LD_LIBRARY_PATH": "/usr/lib", "PATH": "/usr/bin", "HOME": "/h"})
    libdir = str(sysconfig.get_config_var("LIBDIR"))
    assert env["LD_LIBRARY_PATH"] == f"{libdir}:/usr/lib"
    assert env["PATH"] == f"{Path(sys.executable).parent}:/usr/bin"
    assert env["HOME"] == "/h"
    assert server_env({})["PATH"] == str(Path(sys.executable).parent)


def test_main_prepares_everything_then_execs(tmp_path: Path) -> None:
    calls: list[tuple[str, tuple[str, ...], Mapping[str, str]]] = []

    def execve(path: str, argv: tuple[str, ...], env: Mapping[str, str]) -> None:
        calls.append((path, argv, env))

    assert main.main(args(tmp_path), execve=execve) == 0
    [(path, argv, env)] = calls
    assert path.endswith("/tritonserver") and argv[0] == path
    assert (tmp_path / "repo" / "mnist" / "1" / "model.py").is_file()
    backend_dir = Path(next(a for a in argv if a.startswith("--backend-directory=")).split("=")[1])
    assert (backend_dir / "python" / STUB_NAME).resolve().is_file()
    assert env["PATH"].startswith(str(Path(sys.executable).parent))
