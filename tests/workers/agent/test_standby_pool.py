"""Standby worker interpreters: real processes that become real Torch workers."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from meshline.v1 import agent_pb2
from tests.harness.load import rest_infer
from tests.harness.processes import free_port
from tests.workers.agent.helpers import agent_config, states, until, workload
from workers.agent.launch import WorkerPorts, worker_command
from workers.agent.standby_pool import FIRST_RETRY_S, StandbyPool, worker_flags
from workers.agent.supervisor import Supervisor
from workers.demo import build_mlp
from workers.torch_worker.standby import Order

State = agent_pb2.WorkerState


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[StandbyPool]:
    standby = StandbyPool(size=1, log_dir=tmp_path / "standby")
    try:
        yield standby
    finally:
        await standby.stop()


def _ready(http_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v2/health/ready", timeout=1):
            return True
    except OSError:
        return False


def _command(tmp_path: Path, model: Path) -> tuple[list[str], int]:
    http_port = free_port()
    args = worker_command(
        workload(model, "r1"),
        worker_id="w1",
        region="t",
        ports=WorkerPorts("127.0.0.1", free_port(), http_port, 0),
        scratch_dir=tmp_path / "w1",
    )
    return args, http_port


def test_only_torch_worker_commands_can_use_a_standby() -> None:
    torch_args = [sys.executable, "-m", "workers.torch_worker", "--model-name", "m"]
    assert worker_flags(torch_args) == ["--model-name", "m"]
    assert worker_flags([sys.executable, "-m", "workers.triton_worker", "--x"]) is None
    assert worker_flags(["/usr/bin/other", "-m", "workers.torch_worker"]) is None


def test_an_order_round_trips_and_a_bad_one_names_the_problem(tmp_path: Path) -> None:
    order = Order(argv=["--model-name", "m"], log_path=tmp_path / "w.log")
    assert Order.decode(order.encode().decode()) == order
    with pytest.raises(ValueError, match="argv must be a list of strings"):
        Order.decode(json.dumps({"argv": "--model-name m", "log": "x"}))
    with pytest.raises(ValueError, match="log must be a path"):
        Order.decode(json.dumps({"argv": [], "log": ""}))


async def test_a_standby_becomes_the_worker_it_is_told_to_be(
    pool: StandbyPool, tmp_path: Path
) -> None:
    model = build_mlp(tmp_path / "m.pt")
    assert await pool.fill()
    assert not await pool.fill()  # full at size 1, even while its imports are still running
    args, http_port = _command(tmp_path, model)
    log_path = tmp_path / "w1.log"
    if pool.ready == 0:  # still importing: not handed work, the worker starts the usual way
        assert await pool.take(args, tmp_path / "unused.log") is None
    await until(lambda: pool.ready == 1, "the standby's imports", 60)
    standby_log = tmp_path / "standby" / "standby-1.log"
    assert standby_log.exists()

    process = await pool.take(args, log_path)
    assert process is not None and pool.ready == 0
    try:
        await until(lambda: _ready(http_port), "the standby to serve as worker w1", 60)
        batch = np.full((1, 784), 0.5, dtype=np.float32)
        assert rest_infer(f"127.0.0.1:{http_port}", "d", batch).shape == (1, 10)
        text = log_path.read_text()
        assert "----- meshline: starting" in text and "torch_worker[w1]" in text
        assert not standby_log.exists()  # its own log is gone; the worker's log has the rest
        # ps and pgrep -f show the worker's own command line, not the standby's.
        title = Path(f"/proc/{process.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert "-m workers.torch_worker --model-name d" in title and "--worker-id w1" in title
    finally:
        process.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(process.wait(), 30)
    assert status == 0  # a worker's clean stop, as if started the usual way


async def test_other_runtimes_and_an_empty_pool_start_the_usual_way(
    pool: StandbyPool, tmp_path: Path
) -> None:
    triton_args = [sys.executable, "-m", "workers.triton_worker", "--model-name", "m"]
    assert await pool.take(triton_args, tmp_path / "t.log") is None  # pool empty anyway
    await pool.fill()
    await until(lambda: pool.ready == 1, "the standby's imports", 60)
    assert await pool.take(triton_args, tmp_path / "t.log") is None
    assert pool.ready == 1  # still there for a Torch worker


async def test_a_dead_standby_is_skipped_and_replaced_after_a_pause(
    pool: StandbyPool, tmp_path: Path
) -> None:
    await pool.fill()
    dead = pool._standbys[0]
    dead.process.kill()
    await dead.process.wait()
    args, _ = _command(tmp_path, tmp_path / "m.pt")
    assert await pool.take(args, tmp_path / "w.log") is None
    assert pool.ready == 0 and not dead.log_path.exists()
    # Not replaced in a tight loop (a broken install would burn a core): a pause first,
    # longer after each death in a row.
    assert not await pool.fill()
    first_pause = pool._retry_at - time.monotonic()
    assert 0 < first_pause <= FIRST_RETRY_S
    pool._retry_at = 0.0
    assert await pool.fill()
    pool._standbys[0].process.kill()
    await pool._standbys[0].process.wait()
    assert not await pool.fill()
    assert FIRST_RETRY_S < pool._retry_at - time.monotonic() <= 2 * FIRST_RETRY_S


async def test_stop_leaves_nothing_running_even_during_a_fill(
    pool: StandbyPool, tmp_path: Path
) -> None:
    await pool.fill()
    waiting = pool._standbys[0].process
    other = StandbyPool(1, tmp_path / "racing")
    racing = asyncio.create_task(other.fill())
    await asyncio.sleep(0)  # the fill is inside its spawn now
    await other.stop()
    # It started a standby, found the pool closed, and stopped it (and removed its log).
    assert not await racing
    assert other._standbys == [] and list((tmp_path / "racing").iterdir()) == []
    await pool.stop()
    assert waiting.returncode is not None and pool.ready == 0
    assert not await pool.fill()  # a stopped pool starts no more


async def test_a_standby_given_a_bad_order_exits_with_the_reason(
    pool: StandbyPool, tmp_path: Path
) -> None:
    await pool.fill()
    standby = pool._standbys.pop(0)
    process, standby_log = standby.process, standby.log_path
    assert process.stdin is not None
    process.stdin.write(b'{"argv": 3}\n')
    await process.stdin.drain()
    process.stdin.close()
    assert await asyncio.wait_for(process.wait(), 60) == 2
    assert "bad order from the agent" in standby_log.read_text()


async def test_the_supervisor_starts_a_worker_from_its_standby(tmp_path: Path) -> None:
    sup = Supervisor(agent_config(tmp_path, standby_workers=1), on_change=lambda: None)
    task = asyncio.create_task(sup.run())
    try:
        await until(lambda: sup.standby.ready == 1, "the standby to be prepared")
        standby_pid = sup.standby._standbys[0].process.pid
        sup.set_desired([workload(build_mlp(tmp_path / "m.pt"), "r1")])
        await until(lambda: states(sup) == [("r1", State.WORKER_STATE_HEALTHY)], "r1 healthy")
        worker = next(iter(sup.workers.values()))
        assert worker.process is not None and worker.process.pid == standby_pid
        # Its memory is the standby's process's, measured like any worker's.
        await until(lambda: sup.report().workers[0].memory_bytes > 0, "its memory")
        # Once nothing is starting, the next standby is prepared.
        await until(lambda: sup.standby.ready == 1, "the pool to refill")
        assert sup.standby._standbys[0].process.pid != standby_pid
    finally:
        await sup.stop()
        task.cancel()
    assert sup.standby.ready == 0
