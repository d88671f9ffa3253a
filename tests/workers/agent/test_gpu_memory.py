"""GPU memory from nvidia-smi: the parser on its CSV, and the bounded query of a real program.

The machines the tests run on have no NVIDIA GPU: a small executable stands in for nvidia-smi
(it checks it was asked the right query, then answers as nvidia-smi does, fails, or hangs).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.workers.agent.helpers import nvidia_smi_stand_in as stand_in
from tests.workers.agent.helpers import until
from workers.agent.gpu_memory import (
    MIB,
    Gpu,
    GpuQueryError,
    parse_nvidia_smi,
    query_gpus,
)

H100 = "NVIDIA H100 80GB HBM3, 81559, 1234\n"


@pytest.mark.parametrize(
    ("csv", "expected"),
    [
        ("", []),
        (H100, [Gpu("NVIDIA H100 80GB HBM3", 81559 * MIB, 1234 * MIB)]),
        (
            "NVIDIA A10G, 23028, 0\n\nTesla T4, 15360, 5\n",
            [Gpu("NVIDIA A10G", 23028 * MIB, 0), Gpu("Tesla T4", 15360 * MIB, 5 * MIB)],
        ),
        # A MIG or vGPU setup may have no figure for a field: 0, not a failed read.
        ("NVIDIA A100, [N/A], [Not Supported]\n", [Gpu("NVIDIA A100", 0, 0)]),
        # Fields are counted from the right: a comma in a name stays in the name.
        ("Board, rev 2, 100, 50\n", [Gpu("Board, rev 2", 100 * MIB, 50 * MIB)]),
    ],
)
def test_nvidia_smi_csv_gives_each_gpus_memory(csv: str, expected: list[Gpu]) -> None:
    assert parse_nvidia_smi(csv) == expected


@pytest.mark.parametrize(
    ("csv", "problem"),
    [
        ("NVIDIA H100 80GB HBM3\n", "expected 'name, total, used'"),
        (", 100, 50\n", "expected 'name, total, used'"),
        ("NVIDIA H100, 80 GiB, 1\n", "not a memory figure in MiB: '80 GiB'"),
        ("NVIDIA H100, 81559, -1\n", "not a memory figure in MiB: '-1'"),
    ],
)
def test_unexpected_nvidia_smi_output_names_the_problem(csv: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_nvidia_smi(csv)


async def test_the_query_reads_what_nvidia_smi_prints(tmp_path: Path) -> None:
    nvidia_smi = stand_in(tmp_path, f"printf '{H100}'")
    assert await query_gpus(nvidia_smi, 10) == [
        Gpu("NVIDIA H100 80GB HBM3", 81559 * MIB, 1234 * MIB)
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("echo 'NVIDIA-SMI has failed' >&2; exit 9", "exited with code 9: NVIDIA-SMI has failed"),
        ("echo 'No devices were found'; exit 6", "exited with code 6: No devices were found"),
        ("echo 'garbage'", "unexpected output of .*: expected 'name, total, used'"),
    ],
)
async def test_a_failed_query_says_why(tmp_path: Path, body: str, problem: str) -> None:
    with pytest.raises(GpuQueryError, match=problem):
        await query_gpus(stand_in(tmp_path, body), 10)


async def test_a_program_that_is_not_there_says_so(tmp_path: Path) -> None:
    with pytest.raises(GpuQueryError, match="cannot run"):
        await query_gpus(str(tmp_path / "nvidia-smi"), 10)


async def test_a_hanging_nvidia_smi_is_given_up_and_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    nvidia_smi = stand_in(tmp_path, f"echo $$ > {pid_file}; exec sleep 600")
    with pytest.raises(GpuQueryError, match="did not answer within 1 s"):
        await query_gpus(nvidia_smi, 1.0)
    pid = int(pid_file.read_text())

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    await until(gone, "the hanging nvidia-smi to be killed and reaped", timeout_s=10)
