"""Profile the fast path: py-spy on the Torch worker under gRPC load through the region's Envoy.

`python -m bench.profile_fastpath [--seconds 15] [--concurrency 16]` brings up a one-region
network with one worker, drives closed-loop load (bench.load) through the gateway while
`py-spy record` samples the worker, and prints the hottest frames (self and inclusive %),
so a change to the decode/encode path can be judged by what it removes, not by a guess.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from bench.load import LoadResult
from bench.mesh_overhead import load, worker_address
from tests.harness.mesh import running_mesh
from tests.harness.processes import VENV_BIN
from workers.demo import build_mlp

DEPLOYMENT = "demo"


def one_replica_documents(model: Path, region: str) -> str:
    """The demo deployment with a single worker, so every request lands on the profiled one."""
    return f"""\
kind: Environment
metadata: {{name: production}}
spec: {{description: bench}}
---
kind: Model
metadata: {{name: demo-mlp}}
spec:
  versions:
    - name: v1
      runtime: torch
      path: {model}
      signature:
        inputs: [{{name: input, datatype: FP32, shape: [-1, 784]}}]
        outputs: [{{name: output, datatype: FP32, shape: [-1, 10]}}]
---
kind: Deployment
metadata: {{name: {DEPLOYMENT}}}
spec:
  environment: production
  model: demo-mlp
  version: v1
  replicas: 1
  policies:
    - location: {{regions: [{region}]}}
"""


def pid_listening(port: int) -> int:
    """The pid of the process that listens on 127.0.0.1:`port` (from `ss`)."""
    out = subprocess.run(
        ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    marker = "pid="
    start = out.index(marker) + len(marker)
    return int(out[start : out.index(",", start)])


@dataclass(frozen=True)
class Frame:
    name: str
    self_pct: float
    total_pct: float


def top_frames(raw: str, limit: int) -> list[Frame]:
    """Self and inclusive share of each function from py-spy's collapsed-stack output."""
    self_count: collections.Counter[str] = collections.Counter()
    total_count: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        # Thread name is the first frame; idle threads are still samples of the process.
        samples += count
        self_count[frames[-1]] += count
        for name in set(frames[1:]):
            total_count[name] += count
    ranked = sorted(total_count, key=lambda n: self_count[n], reverse=True)[:limit]
    return [Frame(n, 100 * self_count[n] / samples, 100 * total_count[n] / samples) for n in ranked]


def profile(pid: int, seconds: float, out: Path, native: bool) -> None:
    """py-spy record into `out` (collapsed stacks); non-blocking unless native frames are asked.

    --native needs to stop the process for every sample, which slows it several-fold.
    """
    subprocess.run(
        [
            str(VENV_BIN / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(out),
            *(["--native"] if native else ["--nonblocking"]),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path("/tmp/meshline-fastpath.txt"))
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="meshline-prof-") as tmp:
        state = Path(tmp)
        model = build_mlp(state / "demo.pt", seed=0)
        with running_mesh(state, regions=("eu",)) as mesh:
            mesh.apply(one_replica_documents(model, "eu"))
            mesh.wait_ready(DEPLOYMENT)
            region = mesh.region("eu")
            direct = worker_address(region.status.admin_address, DEPLOYMENT)
            pid = pid_listening(int(direct.rsplit(":", 1)[1]))
            results: list[LoadResult] = []
            loader = threading.Thread(
                target=lambda: results.append(
                    load(region.status.gateway_address, args.concurrency, args.seconds + 3)
                )
            )
            loader.start()
            profile(pid, args.seconds, args.out, args.native)
            loader.join()
    r = results[0]
    print(f"load: {r.throughput:.0f} req/s p50 {r.p50_ms:.2f} ms p99 {r.p99_ms:.2f} ms")
    print(f"{'self%':>6} {'total%':>6}  frame")
    for f in top_frames(args.out.read_text(), args.top):
        print(f"{f.self_pct:6.1f} {f.total_pct:6.1f}  {f.name}")


if __name__ == "__main__":
    main()
