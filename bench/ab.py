"""A/B of a fast-path change, alternating in one run: the figure a change is kept or dropped by.

    python -m bench.ab --what worker --base HEAD        # worker code: base tree vs candidate
    python -m bench.ab --what envoy --base HEAD         # Envoy settings (translate stage)

Two source trees are extracted under a temp dir: A = `git archive BASE`, B = `git archive HEAD`
with the working tree's `--files` laid over it (the change under test; other people's
uncommitted edits stay out; `path=SOURCE` lays any file there, for an experiment).
`worker`: a Torch worker from each tree, each behind its own static Envoy (or called
directly, `--direct`). `envoy`: one worker from B, behind two static Envoys
configured by A's and B's translate code. Runs alternate A/B (order swapped every round) and
each side keeps its median-throughput run; the CPU time of the process under test per request
(from /proc) is reported too, as it is far less noisy than throughput on a shared machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load import LoadResult
from tests.harness.envoy_admin import read_clusters
from tests.harness.processes import ManagedProcess, free_port, port_open, wait_until
from tests.harness.worker import http_ready, worker_command
from workers.demo import build_mlp

ROOT = Path(__file__).resolve().parents[1]
DEPLOYMENT = "demo"
MY_FILES = (
    "workers/oip/codec.py",
    "workers/torch_worker/grpc_adapter.py",
    "workers/torch_worker/rest_adapter.py",
    "controlplane/translate/clusters.py",
    "controlplane/translate/listener.py",
    "bench/load.py",
    "bench/static_gateway.py",
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def extract_tree(rev: str, dest: Path, overlay: Sequence[str] = ()) -> Path:
    """`git archive rev` into dest, then the working tree's `overlay` files on top."""
    data = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    for entry in overlay:
        # "path" takes the working tree's file; "path=SOURCE" any other file (an experiment).
        name, _, source = entry.partition("=")
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(source) if source else ROOT / name, dest / name)
    # The load generator and the static gateway are the candidate's on both sides.
    for name in ("bench/load.py", "bench/static_gateway.py"):
        shutil.copy2(ROOT / name, dest / name)
    return dest


def in_tree(tree: Path, module: str, args: Sequence[str]) -> list[str]:
    """A `python -m module` command that imports from `tree` first."""
    boot = f"import sys, runpy; sys.path.insert(0, {str(tree)!r}); " + (
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-c", boot, *args]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Side:
    name: str
    target_grpc: str
    target_http: str
    pid: int  # the process whose CPU per request is reported


def signature(features: int) -> dict[str, Any]:
    return {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, features]}],
        "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}],
    }


def build_model(path: Path, features: int) -> Path:
    """The demo MLP for 784 features; a plain Linear(features, 10) for big-tensor runs."""
    if features == 784:
        return build_mlp(path, seed=0)
    import torch

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(torch.nn.Linear(features, 10).eval(), torch.zeros(1, features))
        torch.jit.save(traced, str(path))
    return path


@contextmanager
def worker(
    tree: Path, model: Path, logs: Path, name: str, features: int
) -> Iterator[tuple[int, int, int]]:
    grpc_port, http_port = free_port(), free_port()
    args = worker_command(
        model, grpc_port=grpc_port, http_port=http_port, model_name=DEPLOYMENT,
        signature=signature(features), worker_id=name,
    )  # fmt: skip
    process = ManagedProcess(name, in_tree(tree, "workers.torch_worker", args[3:]), logs)
    try:
        wait_until(lambda: http_ready(f"http://127.0.0.1:{http_port}"), 60, f"{name} ready")
        yield process.pid, grpc_port, http_port
    finally:
        process.stop()


@contextmanager
def envoy(tree: Path, worker_ports: tuple[int, int], logs: Path, name: str) -> Iterator[Side]:
    listen, admin = free_port(), free_port()
    yaml = subprocess.run(
        in_tree(
            tree,
            "bench.static_gateway",
            [
                "--deployment", DEPLOYMENT,
                "--worker", f"127.0.0.1:{worker_ports[0]}:{worker_ports[1]}",
                "--listen", str(listen), "--admin", str(admin),
            ],
        ),
        capture_output=True, text=True, check=True, cwd=tree,
    ).stdout  # fmt: skip
    config = logs / f"{name}.yaml"
    config.write_text(yaml)
    binary = Path(sys.executable).parent / "envoy"
    args = [str(binary), "-c", str(config), "--disable-hot-restart", "--log-level", "warn",
            "--concurrency", "1", "--base-id", str(listen)]  # fmt: skip
    process = ManagedProcess(name, args, logs)
    try:
        wait_until(lambda: port_open("127.0.0.1", listen), 30, f"{name} listener")
        wait_until(lambda: _routes(listen), 30, f"{name} routing to the worker")
        wait_until(lambda: _all_healthy(admin), 30, f"{name}'s health checks to pass")
        target = f"127.0.0.1:{listen}"
        yield Side(name, target, target, process.pid)
    finally:
        process.stop()


def _all_healthy(admin: int) -> bool:
    """Every host of every cluster passed the gateway's own health checks."""
    hosts = read_clusters(f"127.0.0.1:{admin}")
    return bool(hosts) and all(h.get("health_flags") == "healthy" for h in hosts.values())


def _routes(port: int) -> bool:
    url = f"http://127.0.0.1:{port}/v2/models/{DEPLOYMENT}/ready"
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def run_load(
    tree: Path, side: Side, protocol: str, concurrency: int, seconds: float, features: int
) -> tuple[LoadResult, float]:
    """One closed-loop run; the result and the side's CPU µs per request."""
    target = side.target_grpc if protocol == "grpc" else side.target_http
    before = cpu_seconds(side.pid)
    out = subprocess.run(
        in_tree(
            tree,
            "bench.load",
            [
                "--target", target, "--deployment", DEPLOYMENT, "--protocol", protocol,
                "--concurrency", str(concurrency), "--seconds", str(seconds), "--warmup", "0.5",
                "--features", str(features),
            ],
        ),
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    used = cpu_seconds(side.pid) - before
    result = LoadResult(**json.loads(out))
    total = result.requests + result.errors
    # CPU covers warm-up too: scale requests by the run's full length.
    per_request = used / max(1.0, result.throughput * (seconds + 0.5)) if total else 0.0
    return result, per_request * 1e6


def compare(
    tree: Path, a: Side, b: Side, protocols: Sequence[str], concurrencies: Sequence[int],
    rounds: int, seconds: float, features: int,
) -> None:  # fmt: skip
    print(f"{'proto':<12}{'c':>4}  {'A req/s':>8} {'B req/s':>8} {'B/A':>6}  "
          f"{'A p50':>6} {'B p50':>6}  {'A cpu/req':>9} {'B cpu/req':>9} {'B/A':>6}")  # fmt: skip
    for protocol in protocols:
        for c in concurrencies:
            runs: dict[str, list[tuple[LoadResult, float]]] = {"A": [], "B": []}
            for i in range(rounds):
                order = (("A", a), ("B", b)) if i % 2 == 0 else (("B", b), ("A", a))
                for key, side in order:
                    runs[key].append(run_load(tree, side, protocol, c, seconds, features))
            ra, rb = (_median(runs[k]) for k in ("A", "B"))
            ca, cb = (statistics.median(x[1] for x in runs[k]) for k in ("A", "B"))
            print(
                f"{protocol:<12}{c:>4}  {ra.throughput:8.0f} {rb.throughput:8.0f} "
                f"{rb.throughput / ra.throughput:6.3f}  {ra.p50_ms:6.2f} {rb.p50_ms:6.2f}  "
                f"{ca:9.0f} {cb:9.0f} {cb / ca:6.3f}",
                flush=True,
            )


def _median(runs: list[tuple[LoadResult, float]]) -> LoadResult:
    ordered = sorted((r for r, _ in runs), key=lambda r: r.throughput)
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--what", choices=("worker", "envoy"), default="worker")
    parser.add_argument("--base", default="HEAD")
    parser.add_argument("--files", default=",".join(MY_FILES))
    parser.add_argument("--direct", action="store_true", help="worker A/B without Envoy")
    parser.add_argument("--protocols", default="grpc,rest-json,rest-binary")
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--features", type=int, default=784, help="FP32 values per request")
    args = parser.parse_args()
    protocols = args.protocols.split(",")
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="meshline-ab-") as tmp, ExitStack() as stack:
        base = Path(tmp)
        tree_a = extract_tree(args.base, base / "a")
        tree_b = extract_tree("HEAD", base / "b", [f for f in args.files.split(",") if f])
        logs = base / "logs"
        model = build_model(base / "model.pt", args.features)
        if args.what == "worker":
            pid_a, *ports_a = stack.enter_context(
                worker(tree_a, model, logs, "worker-a", args.features)
            )
            pid_b, *ports_b = stack.enter_context(
                worker(tree_b, model, logs, "worker-b", args.features)
            )
            if args.direct:
                a = Side("A", f"127.0.0.1:{ports_a[0]}", f"127.0.0.1:{ports_a[1]}", pid_a)
                b = Side("B", f"127.0.0.1:{ports_b[0]}", f"127.0.0.1:{ports_b[1]}", pid_b)
            else:
                a = stack.enter_context(envoy(tree_b, (ports_a[0], ports_a[1]), logs, "envoy-a"))
                b = stack.enter_context(envoy(tree_b, (ports_b[0], ports_b[1]), logs, "envoy-b"))
                a.pid, b.pid = pid_a, pid_b
        else:
            _, *ports = stack.enter_context(worker(tree_b, model, logs, "worker", args.features))
            a = stack.enter_context(envoy(tree_a, (ports[0], ports[1]), logs, "envoy-a"))
            b = stack.enter_context(envoy(tree_b, (ports[0], ports[1]), logs, "envoy-b"))
        compare(tree_b, a, b, protocols, concurrencies, args.rounds, args.seconds, args.features)


if __name__ == "__main__":
    main()
