"""The agent's view of its machine and its workers' memory: cadence, caches, real readings."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import pytest

from tests.harness.processes import managed, wait_until
from tests.workers.agent.helpers import nvidia_smi_stand_in, until
from workers.agent.gpu_memory import MIB
from workers.agent.resources import ResourceWatch, next_pass_in

HOLDER = "import signal\nheld = b'h' * (50 << 20)\nprint('holding', flush=True)\nsignal.pause()\n"


@pytest.mark.parametrize(
    ("spent_s", "expected_s"),
    [
        (0.0, 2.0),  # a few workers: every 2 s
        (0.05, 1.95),
        (0.2, 1.8),  # 10 % of the time either way
        (1.0, 9.0),  # hundreds of workers: measuring keeps to 10 % of one CPU
        (3.0, 27.0),
    ],
)
def test_passes_are_spaced_by_time_and_by_their_own_cost(spent_s: float, expected_s: float) -> None:
    assert next_pass_in(spent_s, every_s=2.0, share=0.1) == pytest.approx(expected_s)


def test_the_machine_is_what_proc_and_the_cpu_affinity_say() -> None:
    machine = ResourceWatch(dict, nvidia_smi=None).machine()
    assert 0 < machine.memory_available_bytes <= machine.memory_total_bytes
    assert machine.cpus == len(os.sched_getaffinity(0)) >= 1
    assert list(machine.gpus) == []


async def test_a_workers_memory_is_its_processes_until_another_one_runs(tmp_path: Path) -> None:
    with managed("holder", [sys.executable, "-c", HOLDER], tmp_path) as holder:
        wait_until(lambda: "holding" in holder.log(), what="the holder's memory")
        watch = ResourceWatch(lambda: {"w1": holder.pid}, nvidia_smi=None)
        assert watch.memory_of("w1", holder.pid) == 0  # not measured yet
        await watch.measure_workers()
        assert watch.memory_of("w1", holder.pid) >= 50 * MIB
        # A restarted worker is another process: nothing is known of it until it is measured.
        assert watch.memory_of("w1", holder.pid + 1) == 0
        assert watch.memory_of("w1", None) == 0
        assert watch.memory_of("w2", holder.pid) == 0


async def test_gpus_are_read_in_the_background_and_reported(tmp_path: Path) -> None:
    answer = "NVIDIA H100 80GB HBM3, 81559, 1234\\nNVIDIA H100 80GB HBM3, 81559, 0\\n"
    watch = ResourceWatch(dict, nvidia_smi=nvidia_smi_stand_in(tmp_path, f"printf '{answer}'"))
    task = asyncio.create_task(watch.run())
    try:
        await until(lambda: len(watch.machine().gpus) == 2, "the GPUs in the report")
    finally:
        task.cancel()
    first, second = watch.machine().gpus
    assert (first.name, first.total_bytes, first.used_bytes) == (
        "NVIDIA H100 80GB HBM3",
        81559 * MIB,
        1234 * MIB,
    )
    assert second.used_bytes == 0


async def test_a_failing_nvidia_smi_is_logged_and_reports_no_gpus(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = "echo 'NVIDIA-SMI has failed because it could not talk to the driver' >&2; exit 9"
    watch = ResourceWatch(dict, nvidia_smi=nvidia_smi_stand_in(tmp_path, body))
    task = asyncio.create_task(watch.run())
    try:
        with caplog.at_level(logging.WARNING, logger="workers.agent.resources"):
            await until(lambda: "could not talk to the driver" in caplog.text, "the warning")
    finally:
        task.cancel()
    assert list(watch.machine().gpus) == []
