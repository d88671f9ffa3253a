"""The tritonserver command line and environment for one worker.

Two environment settings make the Python backend stub load *this* interpreter: LD_LIBRARY_PATH
starts with the running interpreter's LIBDIR (an older system libpython otherwise gets picked and
fails with `_recursion_count`), and PATH starts with the folder of sys.executable, from which the
embedded Python finds the venv and its site-packages (torch).
"""

from __future__ import annotations

import math
import os
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from workers.triton_worker.config import TritonWorkerConfig
from workers.triton_worker.install import TritonInstall

# --log-level -> Triton's logging switches.
_LOG_FLAGS: dict[str, tuple[str, ...]] = {
    "DEBUG": ("--log-verbose=1",),
    "INFO": ("--log-verbose=0",),
    "WARNING": ("--log-verbose=0", "--log-info=false"),
    "ERROR": ("--log-verbose=0", "--log-info=false", "--log-warning=false"),
}


@dataclass(frozen=True)
class Launch:
    """What os.execve needs."""

    binary: Path
    argv: tuple[str, ...]
    env: Mapping[str, str]


def server_launch(
    config: TritonWorkerConfig,
    install: TritonInstall,
    backend_dir: Path,
    base_env: Mapping[str, str] | None = None,
) -> Launch:
    binary = install.binary
    argv = (
        str(binary),
        f"--model-repository={config.repository_dir}",
        f"--backend-directory={backend_dir}",
        f"--cache-directory={install.cache_directory}",
        f"--http-address={config.host}",
        f"--http-port={config.http_port}",
        f"--grpc-address={config.host}",
        f"--grpc-port={config.grpc_port}",
        f"--metrics-address={config.host}",
        f"--metrics-port={config.metrics_port}",
        "--allow-gpu-metrics=false",
        # model.py defines no auto_complete_config and config.pbtxt is complete: skip the extra
        # stub start that auto-completion would cost.
        "--disable-auto-complete-config",
        f"--exit-timeout-secs={math.ceil(config.shutdown_grace_s)}",
        "--strict-readiness=true",
        f"--id={config.worker_id}",
        *_LOG_FLAGS[config.log_level],
    )
    return Launch(binary=binary, argv=argv, env=server_env(base_env))


def server_env(base_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base_env` (default os.environ) with this interpreter first on LD_LIBRARY_PATH and PATH."""
    env = dict(os.environ if base_env is None else base_env)
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        env["LD_LIBRARY_PATH"] = _prepend(str(libdir), env.get("LD_LIBRARY_PATH", ""))
    env["PATH"] = _prepend(str(Path(sys.executable).parent), env.get("PATH", ""))
    return env


def _prepend(first: str, rest: str) -> str:
    return f"{first}{os.pathsep}{rest}" if rest else first
