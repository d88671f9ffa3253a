"""Command-line pieces both workers share: argparse value types and the scheduling flags.

`python -m workers.torch_worker` and `python -m workers.triton_worker` take the same scheduling
flags (the agent, workers/agent/launch.py, passes both the same ones), defined once here.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class Scheduling:
    """Dynamic batching, priority and instance settings, already checked against each other.

    Meanings follow Triton's: priority level 1 is the highest, `priority_levels` the lowest, and
    0 levels means priority is ignored. `default_priority_level` is resolved: the lowest level
    when levels are on and none (or 0) was given, 0 when there are no levels.
    """

    max_batch_size: int = 1
    max_batch_delay_ms: float = 0.0
    preferred_batch_sizes: tuple[int, ...] = ()
    priority_levels: int = 0
    default_priority_level: int = 0
    instances: int = 1


def add_scheduling_flags(parser: argparse.ArgumentParser) -> None:
    """--max-batch-size, --max-batch-delay-ms, --preferred-batch-sizes, --priority-levels,
    --default-priority-level and --instances, as one argument group."""
    group = parser.add_argument_group("scheduling (as Triton's dynamic batcher)")
    group.add_argument(
        "--max-batch-size",
        type=positive_int,
        default=1,
        help="most rows (sum of the requests' first dimension) merged into one forward pass; "
        "1 = no batching",
    )
    group.add_argument(
        "--max-batch-delay-ms",
        type=non_negative_float,
        default=0.0,
        help="longest a queued request waits for batch-mates before its batch runs anyway",
    )
    group.add_argument(
        "--preferred-batch-sizes",
        type=int_list,
        default=(),
        help="comma list of row counts (each <= --max-batch-size) a batch may run at once at",
    )
    group.add_argument(
        "--priority-levels",
        type=non_negative_int,
        default=0,
        help="number of request priority levels (1 = highest); 0 = priority is ignored",
    )
    group.add_argument(
        "--default-priority-level",
        type=non_negative_int,
        default=None,
        help="level of requests that give no priority (or 0); default: the lowest level",
    )
    group.add_argument(
        "--instances",
        type=positive_int,
        default=1,
        help="forward passes that may run at the same time",
    )


def scheduling_from_args(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> Scheduling:
    """The checked Scheduling of parsed flags; `parser.error` (exit 2) naming the flag if not."""
    for size in ns.preferred_batch_sizes:
        if size > ns.max_batch_size:
            parser.error(
                f"argument --preferred-batch-sizes: {size} is larger than --max-batch-size "
                f"{ns.max_batch_size}"
            )
    levels: int = ns.priority_levels
    default: int | None = ns.default_priority_level
    if default is not None and default > levels:
        parser.error(
            f"argument --default-priority-level: {default} is outside "
            f"0..{levels} (--priority-levels {levels})"
        )
    return Scheduling(
        max_batch_size=ns.max_batch_size,
        max_batch_delay_ms=ns.max_batch_delay_ms,
        preferred_batch_sizes=tuple(ns.preferred_batch_sizes),
        priority_levels=levels,
        default_priority_level=default or levels,
        instances=ns.instances,
    )


# ---- argparse value types ---------------------------------------------------------------------


def port(text: str) -> int:
    value = integer(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return value


def positive_int(text: str) -> int:
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text}")
    return value


def non_negative_int(text: str) -> int:
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def int_list(text: str) -> tuple[int, ...]:
    """Parse "4,8" into (4, 8): sorted, without duplicates, each >= 1; "" is ()."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    return tuple(sorted({positive_int(item) for item in items}))


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value
