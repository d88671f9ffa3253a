"""Every README.md block runs as written, in order, against a fresh `meshline up`.

The test starts what `make up` runs (`.venv/bin/meshline up`, regions eu and us and the demo
deployment) with its state in a temporary working directory, so that the CLI there finds the
control plane through `.meshline/controlplane.addr` as it does in a checkout. Then it takes
README.md's fenced blocks in order (classified by `tests/harness/readme.py`): shell blocks run
with `bash -e`, Python blocks with the venv's Python, both there with `.venv/bin` first on PATH;
a YAML block whose first line names a file is written to that file. Two things are localized:

- the gateway addresses the README names, `127.0.0.1:8081` (eu) and `:8082` (us), the ports
  `make up` takes when they are free, become the ones this `up` really got (others' may be busy);
- `/tmp/...` paths go to the test's own temporary directory.

Blocks marked `<!-- readme-test: skip (why) -->` or `fragment` do not run; an unmarked block the
test cannot classify fails it. After the last block `up` is stopped (also on failure) and nothing
it started may still run: checked by process (those under `up` when it was told to stop, and any
naming the test's directory), not by port, since another program may take a port once it is free.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.client.api import DEFAULT_STATE_DIR, api_client
from cli.client.credentials import API_KEY_ENV, API_KEY_FILE
from cli.server.up import FIRST_GATEWAY_PORT
from meshline.v1 import api_pb2
from tests.harness.processes import REPO_ROOT, VENV_BIN, free_port, managed, wait_until
from tests.harness.readme import Action, Step, localize, readme_steps

README = REPO_ROOT / "README.md"
UP_REGIONS = ("eu", "us")  # what `make up` starts: `meshline up`'s default --regions, in order
UP_START_TIMEOUT_S = 300.0  # `up` itself waits up to 180 s for the demo to be Ready
UP_STOP_TIMEOUT_S = 120.0  # agents drain and stop their workers and Envoy first
BLOCK_TIMEOUT_S = 240.0

# What the README says comes out: a line of a block → text that block's output must contain.
EXPECTED_OUTPUT: dict[str, tuple[str, ...]] = {
    "curl -s -i http://$GW/v2/models/nope/infer": ("404 Not Found", "deployment 'nope' not found"),
    "meshline infer demo --input input=0.5 --region us --http": ("in region us",),
    "/v2/models/demo/infer -d '{}'   # 401: no key": (
        "401 Unauthorized",
        "deployment 'demo' in environment 'production' needs a valid credential",
    ),
    "# 403: not this environment": (
        "403 Forbidden",
        "deployment 'demo' in environment 'production' refused the caller",
    ),
    "# 401 now": ("UNAUTHENTICATED", "the API key from --api-key was refused"),
    "meshline infer my-mlp --input input=1 --region eu": ("in region eu",),
    "meshline get regions   # capacity": ("MEMORY", "free"),
    "meshline plan -f demo-scaled.yaml": ("capacity eu: starts nothing until invoked",),
    "meshline apply -f my-model.yaml --dry-run": ("deployment/my-mlp created (dry run) → eu",),
    "meshline release my-mlp --from development --to production --dry-run": ("(dry run) → eu",),
    "meshline plan -f global.yaml": ("effective policies", "my-mlp (production) → eu, us"),
    "meshline infer demo-scaled --input input=0.5": ("served by worker",),
    "/v2/models/demo-scaled/infer": ("403 Forbidden", "'demo-scaled' in environment 'production'"),
    "meshline rollout retry my-mlp": (
        "rollout #1 v1 → v2 (canary): Progressing, step 1 at 10%",  # status
        "rollout #1 v1 → v2 (canary): Paused, step 1 at 10%",
        "rollout #1 v1 → v2 (canary): Aborted",
        "rollout #2 v1 → v2 (canary, retry of #1): Progressing, step 1 at 10%",
        "version set back to 'v1'",
    ),
    "meshline delete -f canary.yaml": ("phase: Aborted", "serving_version: v1"),
}


@dataclass(frozen=True)
class Network:
    """What the test's `up` reported: where the CLI finds it and what must be gone after it."""

    api_address: str
    gateways: dict[str, str]  # region → gateway host:port
    up_pid: int


@contextmanager
def running_up(work: Path, log_dir: Path) -> Iterator[Network]:
    """`meshline up` with its state in `work/.meshline`, stopped when the block ends."""
    state_dir = work / ".meshline"
    args = [str(VENV_BIN / "meshline"), "up", "--state-dir", str(state_dir)]
    args += ["--api-port", str(free_port())]
    with managed("meshline-up", args, log_dir, stop_timeout_s=UP_STOP_TIMEOUT_S) as up:
        wait_until(
            lambda: "meshline is up" in up.log() or not up.alive(),
            UP_START_TIMEOUT_S,
            "`meshline up` to print 'meshline is up'",
        )
        assert up.alive(), f"meshline up exited:\n{up.log()[-4000:]}"
        address = (state_dir / "controlplane.addr").read_text().strip()
        with api_client(address) as api:
            regions = api.regions.ListRegions(api_pb2.ListRegionsRequest(), timeout=10).regions
        assert sorted(r.metadata.name for r in regions) == sorted(UP_REGIONS)
        yield Network(address, {r.metadata.name: r.status.gateway_address for r in regions}, up.pid)


def readme_addresses(network: Network) -> dict[str, str]:
    """The gateway address the README names for each region → the one this `up` got."""
    return {
        f"127.0.0.1:{FIRST_GATEWAY_PORT + index}": network.gateways[region]
        for index, region in enumerate(UP_REGIONS)
    }


def block_env(work: Path) -> dict[str, str]:
    """A reader's shell after `source .venv/bin/activate`, in a directory `up` ran from, and
    after the tour's `export MESHLINE_API_KEY=$(cat .meshline/api-key)` (each block runs in a
    shell of its own, so a variable one exports does not reach the next)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MESHLINE_ADDRESS", API_KEY_ENV)}
    env[API_KEY_ENV] = (work / DEFAULT_STATE_DIR / API_KEY_FILE).read_text().strip()
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    return env


def run_block(step: Step, text: str, work: Path, env: dict[str, str]) -> str:
    """Run one block; its output, or a failure naming its README line."""
    if step.action is Action.SHELL:
        args = ["bash", "-e", "-c", text]
    else:
        args = [str(VENV_BIN / "python"), "-c", text]
    process = subprocess.Popen(
        args,
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a timed-out block is stopped with everything it started
    )
    try:
        output, _ = process.communicate(timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(
            f"README.md:{step.block.line} did not finish:\n{text}\n--- output ---\n{output}"
        )
    if process.returncode != 0:
        pytest.fail(
            f"README.md:{step.block.line} exited {process.returncode}:\n{text}\n"
            f"--- output ---\n{output}"
        )
    return output


@dataclass(frozen=True)
class ProcessId:
    """A process, told apart from a later one that got the same pid by its start time."""

    pid: int
    started: int  # /proc/PID/stat starttime (clock ticks after boot)


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a running process; None once it is gone (or a zombie: it
    exited, and only its parent has not collected it yet)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> set[ProcessId]:
    """Every process below `root` now (what the test's `up` started, directly or not)."""
    children: dict[int, list[ProcessId]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append(ProcessId(int(entry.name), stat[1]))
    found: set[ProcessId] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child.pid)
    return found


def still_running(processes: set[ProcessId]) -> list[int]:
    """The pids of `processes` that still run, killed (a failing test leaves nothing behind)."""
    running = sorted(
        p.pid for p in processes if (stat := _stat(p.pid)) is not None and stat[1] == p.started
    )
    for pid in running:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return running


def processes_naming(path: Path) -> list[int]:
    """Pids whose command line names `path` (what the test's `up` started, by its state)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline:
            pids.append(int(entry.name))
    return pids


@contextmanager
def swept(path: Path) -> Iterator[list[int]]:
    """The pids still naming `path` when the block ends, killed then, also on failure."""
    left: list[int] = []
    try:
        yield left
    finally:
        left.extend(processes_naming(path))
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def check_expected_output(steps: list[Step], outputs: dict[int, str]) -> None:
    for line, expected in EXPECTED_OUTPUT.items():
        holders = [s for s in steps if s.block.line in outputs and line in s.block.text]
        assert len(holders) == 1, f"{line!r} is in {len(holders)} run README blocks, not 1"
        output = outputs[holders[0].block.line]
        for text in expected:
            assert text in output, (
                f"README.md:{holders[0].block.line}: {line!r} printed no {text!r}:\n{output}"
            )


@pytest.mark.timeout(1200)
def test_every_readme_block_runs_in_order_on_a_fresh_up(tmp_path: Path) -> None:
    steps = readme_steps(README.read_text())
    work, scratch = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    scratch.mkdir()
    outputs: dict[int, str] = {}
    with swept(work) as left, running_up(work, tmp_path / "logs") as network:
        env = block_env(work)
        addresses = readme_addresses(network)
        for step in steps:
            text = localize(step.block.text, addresses, str(scratch))
            if step.action is Action.WRITE_FILE:
                (work / step.file_name).write_text(text)
            elif step.action in (Action.SHELL, Action.PYTHON):
                outputs[step.block.line] = run_block(step, text, work, env)
        check_expected_output(steps, outputs)
        started = descendants(network.up_pid)
    assert started, "`up` ran no process of its own (control plane, agents, Envoys, workers)"
    assert not left, f"processes of the test's `up` still ran after it stopped: {left}"
    running = still_running(started)
    assert not running, f"processes `up` started still ran after it stopped: {running}"
