"""`python -m workers.torch_worker.standby`: a worker interpreter started before it is needed.

Most of a Torch worker's start is the interpreter importing torch, gRPC and aiohttp, the same for
every model. A standby pays that in advance, while nothing is asked of it, then blocks on stdin
(no CPU) until its agent sends one line of JSON: `{"argv": [worker flags...], "log": PATH}`. Its
log says READY_LINE once the imports are done: the agent hands work only to a ready standby, so
whatever happens after the order (a bad model file, a port taken) is in the worker's own log.
It then points its stdout and stderr at the worker's log, takes the worker's command line as
its process title, and becomes that worker, exactly as `python -m workers.torch_worker FLAGS`
would run (same flags, statuses and signals), only without the imports. A closed stdin exits 0
without starting; the agent stops an unused standby with SIGTERM.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import setproctitle

WORKER_MODULE = __package__ or "workers.torch_worker"  # what the standby becomes
READY_LINE = "meshline standby: imports done, waiting for a worker to become"


@dataclass(frozen=True)
class Order:
    """What the agent asks a standby to become."""

    argv: list[str]
    log_path: Path

    def encode(self) -> bytes:
        return (json.dumps({"argv": self.argv, "log": str(self.log_path)}) + "\n").encode()

    @staticmethod
    def decode(line: str) -> Order:
        data = json.loads(line)
        argv, log = data["argv"], data["log"]
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise ValueError("argv must be a list of strings")
        if not isinstance(log, str) or not log:
            raise ValueError("log must be a path")
        return Order(argv=argv, log_path=Path(log))


def redirect_output(log_path: Path) -> None:
    """From now on this process writes where the worker's log is (the fds, not just sys.*)."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main() -> int:
    import workers.torch_worker.server  # noqa: F401 - the point: torch, gRPC, aiohttp now

    print(READY_LINE, file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    try:
        order = Order.decode(line)
    except (ValueError, KeyError, TypeError) as exc:
        print(f"torch_worker.standby: error: bad order from the agent: {exc}", file=sys.stderr)
        return 2
    redirect_output(order.log_path)
    # ps and pgrep -f see the command a usual start would have had, flags and worker id.
    setproctitle.setproctitle(shlex.join([sys.executable, "-m", WORKER_MODULE, *order.argv]))
    from workers.torch_worker.main import main as worker_main

    return worker_main(order.argv)


if __name__ == "__main__":
    sys.exit(main())
