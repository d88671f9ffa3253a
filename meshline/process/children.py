"""Start child processes that die with the agent, and stop them cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from meshline.join_token import JOIN_TOKEN_ENV

# Written into a child's log before each start: a reason is read from the last run only.
RUN_MARKER = "----- meshline: starting "


def mark_failure(log_path: Path, message: str) -> None:
    """A start that never happened, written where its reason is read from."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        log.write(f"{RUN_MARKER}(failed)\n{message}\n")


def write_marker(log_path: Path, args: Sequence[str]) -> None:
    """Mark where a run's lines start in its log (exit_reason reads the last run only)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"{RUN_MARKER}{' '.join(args[:3])}\n".encode())


async def spawn(
    args: Sequence[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    stdin_pipe: bool = False,
) -> asyncio.subprocess.Process:
    """`stdin_pipe`: the child reads what the agent writes to its stdin (else /dev/null)."""
    write_marker(log_path, args)
    with open(log_path, "ab") as log:
        # No preexec_fn: nothing of ours runs between fork and exec (see orphan_guard).
        return await asyncio.create_subprocess_exec(
            *guarded(args),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.PIPE if stdin_pipe else asyncio.subprocess.DEVNULL,
            env=child_environment(os.environ, env),
        )


# Secrets of the agent that no child gets: Envoy and the workers (which run user model code)
# never see the join token, even if something put it back into the agent's environment.
WITHHELD_FROM_CHILDREN = frozenset({JOIN_TOKEN_ENV})


def child_environment(
    parent: Mapping[str, str], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A child's environment: the agent's, with `extra` on top, without its secrets."""
    merged = {**parent, **(extra or {})}
    return {name: value for name, value in merged.items() if name not in WITHHELD_FROM_CHILDREN}


def guarded(args: Sequence[str]) -> list[str]:
    """`args` run through orphan_guard: the child gets SIGTERM when the agent dies."""
    return [sys.executable, "-m", "meshline.process.orphan_guard", str(os.getpid()), "--", *args]


async def stop(process: asyncio.subprocess.Process, grace_s: float) -> None:
    """SIGTERM, wait up to grace_s, then SIGKILL."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), grace_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


# A glog error line, as tritonserver writes them: E1201 19:44:59.357 21260 file.cc:642] "text"
_GLOG_ERROR = re.compile(r'^E\d{4} [\d:.]+ +\d+ [^\]]+\] "?(?P<text>.*?)"?$')
# Errors Triton prints on every CPU-only start: not why anything failed.
_GLOG_NOISE = ("CudaDriverHelper", "NVML", "DCGM", "GPU metrics")
_MAX_REASON = 400
_GLOG_LINE = re.compile(r"^[IWEF]\d{4} ")
_OWN_ERROR = re.compile(r"^[a-z][\w.-]*: error: ")  # how meshline's workers report a failure


def exit_reason(log_path: Path) -> str:
    """Why a child died, in one line: its last log line, plus the last real error line before
    it when that says more (Triton ends with a generic "failed to load all models" and names
    the actual cause, e.g. the bad model file, a few lines earlier)."""
    try:
        lines = log_path.read_text(errors="replace").strip().splitlines()[-400:]
    except OSError:
        return ""
    starts = [i for i, line in enumerate(lines) if line.startswith(RUN_MARKER)]
    if starts:
        lines = lines[starts[-1] + 1 :]  # this run's lines only
    if not lines:
        return ""
    last = lines[-1].strip()
    if _GLOG_LINE.match(last):
        # A library's own log line after the worker's error (gRPC at interpreter exit): the
        # worker's "prog: error: ..." line says why.
        own = next((line for line in reversed(lines[-30:]) if _OWN_ERROR.match(line)), "")
        if own:
            return own.strip()[:_MAX_REASON]
    cause = ""
    for line in reversed(lines[:-1]):
        match = _GLOG_ERROR.match(line.strip())
        if match and not any(noise in line for noise in _GLOG_NOISE):
            cause = match.group("text").split("\\n")[0].strip()
            break
    reason = f"{last} ({cause})" if cause and cause not in last else last
    return reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 1] + "…"


def tail(log_path: Path, lines: int = 5) -> str:
    """The last lines of a child's log, to explain why it died."""
    try:
        text = log_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])
