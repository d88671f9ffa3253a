"""The scheduling flags both workers share (workers/flags.py): one table of bad combinations, run
against each worker's own parser so both give the same exit 2 and the same message."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence

import pytest

from workers.demo import DEMO_SIGNATURE
from workers.flags import Scheduling, add_scheduling_flags, int_list, scheduling_from_args
from workers.torch_worker.config import parse_args as parse_torch_args
from workers.triton_worker.config import parse_args as parse_triton_args

COMMON = [
    "--model-name", "mnist",
    "--model-path", "m.pt",
    "--signature", json.dumps(DEMO_SIGNATURE),
    "--grpc-port", "9001",
    "--http-port", "9002",
]  # fmt: skip


def _torch(extra: Sequence[str]) -> Scheduling:
    return parse_torch_args([*COMMON, *extra]).scheduling


def _triton(extra: Sequence[str]) -> Scheduling:
    return parse_triton_args([*COMMON, "--metrics-port", "9003", *extra]).scheduling


def _bare(extra: Sequence[str]) -> Scheduling:
    parser = argparse.ArgumentParser(prog="t")
    add_scheduling_flags(parser)
    return scheduling_from_args(parser, parser.parse_args(extra))


PARSERS: dict[str, Callable[[Sequence[str]], Scheduling]] = {
    "bare": _bare,
    "torch": _torch,
    "triton": _triton,
}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-batch-size", "0"], "argument --max-batch-size: must be >= 1: 0"),
        (["--max-batch-size", "x"], "argument --max-batch-size: not an integer: 'x'"),
        (["--max-batch-delay-ms", "-1"], "argument --max-batch-delay-ms: must be >= 0: -1"),
        (["--max-batch-delay-ms", "soon"], "argument --max-batch-delay-ms: not a number"),
        (
            ["--max-batch-size", "8", "--preferred-batch-sizes", "4,16"],
            "argument --preferred-batch-sizes: 16 is larger than --max-batch-size 8",
        ),
        (["--preferred-batch-sizes", "16"], "16 is larger than --max-batch-size 1"),
        (["--preferred-batch-sizes", "4,x"], "argument --preferred-batch-sizes: not an integer"),
        (["--preferred-batch-sizes", "0"], "argument --preferred-batch-sizes: must be >= 1: 0"),
        (["--priority-levels", "-1"], "argument --priority-levels: must be >= 0: -1"),
        (["--priority-levels", "x"], "argument --priority-levels: not an integer"),
        (
            ["--priority-levels", "3", "--default-priority-level", "4"],
            "argument --default-priority-level: 4 is outside 0..3 (--priority-levels 3)",
        ),
        (
            ["--default-priority-level", "1"],  # without --priority-levels
            "argument --default-priority-level: 1 is outside 0..0 (--priority-levels 0)",
        ),
        (["--default-priority-level", "-1"], "argument --default-priority-level: must be >= 0"),
        (["--instances", "0"], "argument --instances: must be >= 1: 0"),
    ],
)
@pytest.mark.parametrize("worker", sorted(PARSERS))
def test_bad_scheduling_flags_exit_2_naming_the_flag(
    worker: str, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        PARSERS[worker](extra)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("worker", sorted(PARSERS))
def test_both_workers_read_the_flags_alike(worker: str) -> None:
    parse = PARSERS[worker]
    assert parse([]) == Scheduling(1, 0.0, (), 0, 0, 1)
    assert parse(
        ["--max-batch-size", "16", "--max-batch-delay-ms", "2.5", "--preferred-batch-sizes",
         "8, 4,8", "--priority-levels", "3", "--default-priority-level", "2", "--instances", "2"]
    ) == Scheduling(16, 2.5, (4, 8), 3, 2, 2)  # fmt: skip


@pytest.mark.parametrize("worker", sorted(PARSERS))
@pytest.mark.parametrize(
    ("extra", "level"),
    [
        (["--priority-levels", "4"], 4),  # no default given: the lowest level
        (["--priority-levels", "4", "--default-priority-level", "0"], 4),  # 0: the lowest too
        (["--priority-levels", "4", "--default-priority-level", "1"], 1),
        (["--default-priority-level", "0"], 0),  # no levels: no default level either
    ],
)
def test_default_priority_level_is_resolved(worker: str, extra: list[str], level: int) -> None:
    assert PARSERS[worker](extra).default_priority_level == level


def test_int_list_sorts_and_drops_duplicates() -> None:
    assert int_list("8, 4,8") == (4, 8)
    assert int_list("") == ()
