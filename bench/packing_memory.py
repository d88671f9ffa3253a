"""Memory of packing: one shared Torch worker serving N demo MLPs against N one-model workers.

Each figure is proportional set size (PSS, workers/agent/proc_memory.py): a page shared by many
workers (torch's libraries) counts once in all, split among them, so the sums compare what the
machine really spends. Prints a table; not a timed test.

    .venv/bin/python -m bench.packing_memory --models 50
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import ExitStack
from pathlib import Path

from tests.harness.worker import running_worker
from tests.workers.torch_worker.shared_helpers import (
    config_of,
    control_stub_of,
    grpc_load,
    running_shared_worker,
)
from workers.agent.proc_memory import children_by_parent, tree_memory_bytes
from workers.demo import DEMO_SIGNATURE, build_mlp

MIB = 2**20


def shared_worker_pss(models: list[Path], log_dir: Path) -> tuple[int, int]:
    """PSS of a shared worker with no model, then with every model loaded."""
    with running_shared_worker(log_dir) as worker, control_stub_of(worker) as control:
        empty = tree_memory_bytes(worker.process.pid)
        for i, path in enumerate(models):
            grpc_load(control, f"m{i}", config_of(path))
        return empty, tree_memory_bytes(worker.process.pid)


def single_workers_pss(models: list[Path], log_dir: Path) -> int:
    """PSS of one worker per model, all running at once."""
    with ExitStack() as stack:
        pids = [
            stack.enter_context(
                running_worker(log_dir, path, model_name=f"m{i}", signature=DEMO_SIGNATURE)
            ).process.pid
            for i, path in enumerate(models)
        ]
        tree = children_by_parent()
        return sum(tree_memory_bytes(pid, tree) for pid in pids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="packing-") as tmp:
        root = Path(tmp)
        models = [build_mlp(root / f"m{i}.pt", seed=i) for i in range(args.models)]
        empty, packed = shared_worker_pss(models, root / "shared-logs")
        singles = single_workers_pss(models, root / "single-logs")
    n = args.models
    print(f"| {n} demo MLPs | PSS in all | per model |")
    print("|---|---:|---:|")
    print(f"| one shared worker (no model loaded) | {empty / MIB:.0f} MiB | |")
    print(f"| one shared worker | {packed / MIB:.0f} MiB | {(packed - empty) / n / MIB:.1f} MiB |")
    print(f"| {n} one-model workers | {singles / MIB:.0f} MiB | {singles / n / MIB:.1f} MiB |")
    print(f"packing saves {(singles - packed) / MIB:.0f} MiB ({singles / packed:.1f}x less)")


if __name__ == "__main__":
    main()
