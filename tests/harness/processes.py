"""Start real processes for tests and always stop them, also on failure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_until(
    condition: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition"
) -> None:
    """Poll `condition` until true; fail with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception as exc:  # the condition may raise while the thing starts
            last_error = exc
        time.sleep(0.05)
    raise TimeoutError(
        f"timed out after {timeout_s}s waiting for {what} (last error: {last_error})"
    )


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class ManagedProcess:
    """A child process in its own process group, with its output in a log file."""

    def __init__(
        self, name: str, args: Sequence[str], log_dir: Path, env: dict[str, str] | None = None
    ):
        self.name = name
        self.args = list(args)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=REPO_ROOT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM the whole group, then SIGKILL what is left."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self._log.close()


@contextmanager
def managed(
    name: str,
    args: Sequence[str],
    log_dir: Path,
    env: dict[str, str] | None = None,
    stop_timeout_s: float = 10.0,
) -> Iterator[ManagedProcess]:
    """Run a process for the duration of a with-block; print its log if the block fails.

    `stop_timeout_s`: how long it may take to stop its own children before it is killed.
    """
    process = ManagedProcess(name, args, log_dir, env)
    try:
        yield process
    except BaseException:
        sys.stderr.write(f"\n----- log of {name} -----\n{process.log()[-6000:]}\n")
        raise
    finally:
        process.stop(stop_timeout_s)
