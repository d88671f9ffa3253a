"""Packing: how many deployments answer their first call on one machine (issue 15).

One real mesh (control plane, region eu: Envoy + agent), demo MLPs (784→128→10, a few
distinct files), side by side in one run:

- packed, N deployments (`--packed`, default 1,000) with `resources.packing: shared`: each
  replica a model in one of the agent's shared worker processes;
- dedicated baseline, M deployments (`--dedicated`, default 50) with `resources.packing:
  dedicated`: each replica a worker process of its own.

Both with `scaling: {min_replicas: 0, max_replicas: 1, scale_to_zero_after: 0}`: nothing runs
until invoked, and a deployment that woke keeps its replica (0 = never back to zero), so after
the first pass every deployment is loaded at once. For each: the deployments applied in batches
of Apply calls, until every one is Ready; then each called once through the gateway (gRPC
ModelInfer, `x-meshline-deployment`, `--clients` threads in parallel), each call a cold start
the activator holds while the replica starts, checked against the same model run by local
torch; then the region's memory as capacity sees it (GetRegion), the machine's MemAvailable,
the processes that serve and their PSS (workers/agent/proc_memory.py); then a second, warm pass
over all of them. The phases run one after the other (dedicated first), the first's
deployments deleted and their processes gone before the second starts.

Writes the "Packing" section of docs/benchmarks.md and prints the same table.

    .venv/bin/python -m bench.packing --packed 1000 --dedicated 50
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
import numpy as np
import torch

from bench.report import REPORT, ROOT, write_section
from bench.scale import machine
from controlplane.api.documents import parse_resource_document
from meshline import wire
from meshline.inference import grpc_service_pb2_grpc as oip_grpc
from meshline.phases import DeploymentPhase
from meshline.v1 import api_pb2, resources_pb2
from tests.e2e.conftest import local_torch
from tests.harness.load import infer_request, output_array
from tests.harness.mesh import Mesh, running_mesh
from tests.harness.processes import wait_until
from workers.agent.proc_memory import children_by_parent, read_machine_memory, tree_memory_bytes
from workers.demo import build_mlp

REGION = "eu"
ENVIRONMENT = "production"
MIB = 2**20
GIB = 2**30
CALL_TIMEOUT_S = 180.0  # a client's deadline for one call (the cold start's own limit is lower)
WAIT_S = 1800.0  # Ready after apply, processes gone after delete
PAGE_SIZE = 500
RESULTS = ROOT / "bench" / "results" / "packing.json"
PROGRESS_EVERY = 100  # calls between two progress lines
MODELS_PER_SHARED_WORKER = 50  # the agent's --models-per-shared-worker default
BATCH = np.random.default_rng(5).standard_normal((2, 784)).astype(np.float32)
SCALING = {"min_replicas": 0, "max_replicas": 1, "scale_to_zero_after": 0}
SIGNATURE = {
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 784]}],
    "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}],
}


# -- what is measured ---------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One call through the gateway: how long it took, and why it failed ("" = answered with
    the right output)."""

    deployment: str
    seconds: float
    error: str = ""
    started_s: float = 0.0  # when it was sent, from the start of its pass

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class Memory:
    """The machine's and the region's memory at one moment."""

    available_bytes: int  # /proc/meminfo MemAvailable
    region_used_bytes: int  # capacity as the control plane sees it (GetRegion)
    region_budget_bytes: int
    region_free_bytes: int


@dataclass
class PhaseResult:
    packing: str  # "shared" | "dedicated"
    deployments: int
    apply_calls_s: float = 0.0
    ready_s: float = 0.0  # from the first Apply call until every deployment is Ready
    processes_before_calls: int = 0
    first: list[Call] = field(default_factory=list)
    first_pass_s: float = 0.0
    warm: list[Call] = field(default_factory=list)
    before: Memory = Memory(0, 0, 0, 0)  # before the Apply calls
    after: Memory = Memory(0, 0, 0, 0)  # after the first pass
    processes: int = 0  # worker processes serving them after the first pass
    pss_bytes: int = 0  # their PSS, all together
    recorded_cold_starts_s: list[float] = field(default_factory=list)  # as status records them
    woken_again: int = 0  # deployments with more than one cold start after both passes
    not_ready: dict[str, str] = field(default_factory=dict)  # deployment → phase and reason
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average at start and end

    @property
    def answered(self) -> int:
        return sum(1 for c in self.first if c.ok)

    @property
    def started(self) -> int:
        """Deployments whose replica started (status counts a cold start), whether or not
        their first call was answered in time."""
        return len(self.recorded_cold_starts_s)


# -- pure helpers -------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank p-th percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def tenths(calls: Sequence[Call]) -> tuple[list[Call], list[Call]]:
    """The first and the last tenth of a pass's calls, in the order they were sent: whether a
    cold start costs more once many models are loaded."""
    ordered = sorted(calls, key=lambda c: c.started_s)
    tenth = max(1, len(ordered) // 10)
    return ordered[:tenth], ordered[-tenth:]


def failure_reasons(calls: Sequence[Call]) -> list[tuple[str, int]]:
    """Each distinct failure, most frequent first."""
    return Counter(c.error for c in calls if not c.ok).most_common()


def interleaved(items: Sequence[str], parts: int) -> list[list[str]]:
    """`items` dealt into `parts` lists, round robin (each client gets every parts-th one)."""
    return [list(items[i::parts]) for i in range(parts)]


def batches(items: Sequence[api_pb2.Resource], size: int) -> Iterator[Sequence[api_pb2.Resource]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def deployment_name(packing: str, i: int) -> str:
    return f"{'packed' if packing == 'shared' else 'ded'}-{i:04d}"


def model_name(file_index: int) -> str:
    return f"mlp-{file_index}"


# -- the mesh's side ----------------------------------------------------------------------


def _resource(doc: dict[str, object]) -> api_pb2.Resource:
    return parse_resource_document(doc, "<bench>", 0)


def base_resources(files: Sequence[Path]) -> list[api_pb2.Resource]:
    """The environment (anyone may call) and one model per distinct file."""
    environment = _resource(
        {
            "kind": "Environment",
            "metadata": {"name": ENVIRONMENT},
            "spec": {"policies": [{"access": {"anonymous": True}}]},
        }
    )
    models = [
        _resource(
            {
                "kind": "Model",
                "metadata": {"name": model_name(i)},
                "spec": {
                    "versions": [
                        {"name": "v1", "runtime": "torch", "path": str(f), "signature": SIGNATURE}
                    ]
                },
            }
        )
        for i, f in enumerate(files)
    ]
    return [environment, *models]


def deployment(
    name: str, file_index: int, packing: str, cold_start_timeout_s: float
) -> api_pb2.Resource:
    scaling: dict[str, object] = dict(SCALING)
    if cold_start_timeout_s:
        scaling["cold_start_timeout"] = cold_start_timeout_s
    return _resource(
        {
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "environment": ENVIRONMENT,
                "model": model_name(file_index),
                "version": "v1",
                "scaling": scaling,
                "resources": {"packing": packing},
                "policies": [{"location": {"regions": [REGION]}}],
            },
        }
    )


def list_deployments(mesh: Mesh, prefix: str) -> list[resources_pb2.Deployment]:
    """Every deployment whose name starts with `prefix`, with status (all pages)."""
    out: list[resources_pb2.Deployment] = []
    token = ""
    while True:
        reply = mesh.deployments.ListDeployments(
            api_pb2.ListDeploymentsRequest(page_size=PAGE_SIZE, page_token=token), timeout=600
        )
        out += [d for d in reply.deployments if d.metadata.name.startswith(prefix)]
        token = reply.next_page_token
        if not token:
            return out


def region_status(mesh: Mesh) -> resources_pb2.RegionStatus:
    request = api_pb2.GetRegionRequest(name=REGION)
    status: resources_pb2.RegionStatus = mesh.regions_api.GetRegion(
        request, timeout=600
    ).region.status
    return status


def memory_now(mesh: Mesh) -> Memory:
    capacity = region_status(mesh).capacity
    return Memory(
        read_machine_memory().available_bytes,
        capacity.memory_used_bytes,
        capacity.memory_budget_bytes,
        capacity.memory_free_bytes,
    )


def settled_memory(mesh: Mesh, timeout_s: float = 120) -> Memory:
    """The region's memory once the agent's reports stopped changing it (three reads a
    second apart within 1 %): the last loads' measurements reach the control plane a report or
    two after the calls."""
    reads: list[Memory] = []

    def steady() -> bool:
        time.sleep(1.0)  # one read per agent report, not a busy loop
        reads.append(memory_now(mesh))
        last = [m.region_used_bytes for m in reads[-3:]]
        return len(last) == 3 and max(last) - min(last) <= 0.01 * max(last)

    wait_until(steady, timeout_s, "the region's memory to settle")
    return reads[-1]


def serving_pids(mesh: Mesh, packing: str) -> list[int]:
    """The worker processes that serve this phase's deployments."""
    if packing == "shared":
        return mesh.shared_worker_pids(REGION)
    return mesh.worker_pids(REGION, "ded-[0-9]+", pattern=True)


def pss_of(pids: Sequence[int]) -> int:
    tree = children_by_parent()
    return sum(tree_memory_bytes(pid, tree) for pid in pids)


def call_all(
    gateway: str,
    names: Sequence[str],
    expected: Callable[[str], np.ndarray],
    clients: int,
    record: Callable[[Call], object] = lambda call: None,
) -> tuple[list[Call], float]:
    """Each deployment called once, `clients` threads in parallel (one channel each); no
    retries: a first call must answer. The calls, and the wall time of the pass; `record`
    sees each call as it ends (a run cut short keeps what it measured)."""
    calls: list[Call] = []
    lock = threading.Lock()
    began = time.perf_counter()

    def client(mine: list[str]) -> None:
        with grpc.insecure_channel(gateway) as channel:
            stub = oip_grpc.GRPCInferenceServiceStub(channel)
            for name in mine:
                started = time.perf_counter()
                error = ""
                try:
                    response = stub.ModelInfer(
                        infer_request(name, BATCH),
                        metadata=((wire.DEPLOYMENT_HEADER, name),),
                        timeout=CALL_TIMEOUT_S,
                    )
                    got = output_array(response)
                    if not np.allclose(got, expected(name), rtol=1e-5, atol=1e-6):
                        error = "wrong output (differs from local torch)"
                except grpc.RpcError as exc:
                    code = exc.code().name if exc.code() else "?"
                    error = f"{code}: {(exc.details() or '')[:200]}"
                seconds = time.perf_counter() - started
                with lock:
                    calls.append(Call(name, seconds, error, started - began))
                    record(calls[-1])
                    if len(calls) % PROGRESS_EVERY == 0:
                        recent = _latencies(calls[-PROGRESS_EVERY:])
                        print(
                            f"  {len(calls)}/{len(names)} calls, "
                            f"{time.perf_counter() - began:.0f} s, "
                            f"{sum(1 for c in calls if not c.ok)} failed, last "
                            f"{PROGRESS_EVERY} p50 {_ms(percentile(recent, 50))}",
                            flush=True,
                        )

    threads = [
        threading.Thread(target=client, args=(part,), name=f"client-{i}")
        for i, part in enumerate(interleaved(names, clients))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return calls, time.perf_counter() - began


def wait_ready(mesh: Mesh, prefix: str, n: int) -> dict[str, str]:
    """Until every deployment of the phase is Ready (or WAIT_S passed); those that are not,
    with their phase and reason."""
    missing: dict[str, str] = {}

    def all_ready() -> bool:
        time.sleep(1.0)  # each look lists every deployment: not more than once a second
        listed = list_deployments(mesh, prefix)
        missing.clear()
        missing.update(
            {
                d.metadata.name: f"{d.status.phase}: {d.status.message}"
                for d in listed
                if d.status.phase != DeploymentPhase.READY
            }
        )
        return len(listed) == n and not missing

    try:
        wait_until(all_ready, WAIT_S, f"{n} deployments Ready")
    except TimeoutError:
        return dict(missing)
    return {}


def run_phase(
    mesh: Mesh,
    packing: str,
    n: int,
    files: Sequence[Path],
    expected: dict[int, np.ndarray],
    batch: int,
    clients: int,
    cold_start_timeout_s: float,
    journal: Path | None = None,
) -> PhaseResult:
    """Apply, first pass, memory, warm pass, delete (see the module's docstring);
    `journal`: where each call is appended as a JSON line as it ends."""
    result = PhaseResult(packing, n)

    def record(pass_name: str) -> Callable[[Call], object]:
        def write(call: Call) -> None:
            if journal is not None:
                with journal.open("a") as out:
                    out.write(json.dumps({"phase": packing, "pass": pass_name, **asdict(call)}))
                    out.write("\n")

        return write

    result.load = (os.getloadavg()[0], 0.0)
    names = [deployment_name(packing, i) for i in range(n)]
    file_of = {name: i % len(files) for i, name in enumerate(names)}
    prefix = names[0].split("-")[0] + "-"
    result.before = settled_memory(mesh)
    docs = [deployment(name, file_of[name], packing, cold_start_timeout_s) for name in names]
    started = time.perf_counter()
    for chunk in batches(docs, batch):
        mesh.apply_resources(chunk, timeout_s=600)
    result.apply_calls_s = time.perf_counter() - started
    result.not_ready = wait_ready(mesh, prefix, n)
    result.ready_s = time.perf_counter() - started
    result.processes_before_calls = len(serving_pids(mesh, packing))
    print(
        f"[{packing}] {n} applied in {result.apply_calls_s:.1f} s, Ready at {result.ready_s:.1f} s"
        f" ({len(result.not_ready)} not Ready); first pass",
        flush=True,
    )

    gateway = mesh.gateway(REGION)
    result.first, result.first_pass_s = call_all(
        gateway, names, lambda name: expected[file_of[name]], clients, record("first")
    )
    print(
        f"[{packing}] first pass: {result.answered}/{n} answered in {result.first_pass_s:.1f} s",
        flush=True,
    )
    result.after = settled_memory(mesh)
    pids = serving_pids(mesh, packing)
    result.processes = len(pids)
    result.pss_bytes = pss_of(pids)
    result.warm, _ = call_all(
        gateway, names, lambda name: expected[file_of[name]], clients, record("warm")
    )
    statuses = list_deployments(mesh, prefix)
    eu = [r for d in statuses for r in d.status.regions if r.region == REGION]
    result.recorded_cold_starts_s = [r.last_cold_start_s for r in eu if r.cold_starts]
    result.woken_again = sum(1 for r in eu if r.cold_starts > 1)
    result.load = (result.load[0], os.getloadavg()[0])
    print(f"[{packing}] warm pass: {sum(c.ok for c in result.warm)}/{n} answered", flush=True)
    mesh.delete_deployments(names)
    wait_until(lambda: not serving_pids(mesh, packing), WAIT_S, f"the {packing} workers to stop")
    return result


# -- the report ---------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return "—" if seconds != seconds else f"{seconds * 1000:,.0f} ms"  # NaN: no value


def _mib(n: float) -> str:
    return f"{n / MIB:,.1f} MiB" if abs(n) < 10 * MIB else f"{n / MIB:,.0f} MiB"


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def _latencies(calls: Sequence[Call]) -> list[float]:
    return [c.seconds for c in calls if c.ok]


def per_deployment(r: PhaseResult) -> dict[str, float]:
    """What one deployment costs, three ways: the PSS of the processes that serve them, the
    machine's MemAvailable drop, and the region's used memory as capacity admission sees it."""
    n = max(1, r.started)
    return {
        "pss": r.pss_bytes / n,
        "available": (r.before.available_bytes - r.after.available_bytes) / n,
        "region": (r.after.region_used_bytes - r.before.region_used_bytes) / n,
    }


def render(run: Run) -> str:
    packed, dedicated = run.phases["shared"], run.phases["dedicated"]
    clients, batch, files = run.clients, run.batch, run.files
    p, d = per_deployment(packed), per_deployment(dedicated)
    budget = packed.after.region_budget_bytes

    def row(label: str, cell: Callable[[PhaseResult], str]) -> str:
        return f"| {label} | {cell(packed)} | {cell(dedicated)} |"

    def lat(calls: Callable[[PhaseResult], list[Call]], q: float) -> Callable[[PhaseResult], str]:
        return lambda r: _ms(percentile(_latencies(calls(r)), q))

    def first(r: PhaseResult) -> list[Call]:
        return r.first

    def warm(r: PhaseResult) -> list[Call]:
        return r.warm

    rows = [
        row("deployments applied", lambda r: f"{r.deployments:,}"),
        row(f"apply ({batch} per Apply call), the calls", lambda r: f"{r.apply_calls_s:.1f} s"),
        row("apply → every deployment Ready", lambda r: f"{r.ready_s:.1f} s"),
        row("worker processes before the first call", lambda r: f"{r.processes_before_calls}"),
        row(
            "**answered their first call correctly**",
            lambda r: f"**{r.answered:,} / {r.deployments:,}**",
        ),
        row("first calls failed", lambda r: f"{len(r.first) - r.answered}"),
        row("deployments started (status: a cold start recorded)", lambda r: f"{r.started:,}"),
        row("first call (cold start) p50", lat(first, 50)),
        row("first call p99", lat(first, 99)),
        row("first call max", lat(first, 100)),
        row(
            "first call p50, first / last tenth of the pass",
            lambda r: " / ".join(_ms(percentile(_latencies(part), 50)) for part in tenths(r.first)),
        ),
        row(
            "cold start as status records it, p50",
            lambda r: _ms(percentile(r.recorded_cold_starts_s, 50)),
        ),
        row(f"first pass, all calls ({clients} clients)", lambda r: f"{r.first_pass_s:.1f} s"),
        row("worker processes serving them after", lambda r: f"{r.processes}"),
        row("their PSS, all together", lambda r: _mib(r.pss_bytes)),
        row("PSS per deployment", lambda r: _mib(per_deployment(r)["pss"])),
        row(
            "MemAvailable before → after",
            lambda r: f"{_gib(r.before.available_bytes)} → {_gib(r.after.available_bytes)}",
        ),
        row("MemAvailable drop per deployment", lambda r: _mib(per_deployment(r)["available"])),
        row(
            "region memory used before → after (capacity)",
            lambda r: f"{_gib(r.before.region_used_bytes)} → {_gib(r.after.region_used_bytes)}",
        ),
        row("region used per deployment (capacity)", lambda r: _mib(per_deployment(r)["region"])),
        row(
            "region budget / free after",
            lambda r: f"{_gib(r.after.region_budget_bytes)} / {_gib(r.after.region_free_bytes)}",
        ),
        row("warm call p50", lat(warm, 50)),
        row("warm call p99", lat(warm, 99)),
        row("warm calls failed", lambda r: f"{len(r.warm) - len(_latencies(r.warm))}"),
        row("deployments started more than once", lambda r: f"{r.woken_again}"),
        row("load average (1 min) at start → end", lambda r: f"{r.load[0]:.1f} → {r.load[1]:.1f}"),
    ]
    failures = [
        f"- {r.packing}: {count} x `{reason}`"
        for r in (packed, dedicated)
        for reason, count in failure_reasons(r.first) + failure_reasons(r.warm)
    ] + [
        f"- {r.packing}: `{name}` not Ready: {why}"
        for r in (packed, dedicated)
        for name, why in list(r.not_ready.items())[:10]
    ]
    dedicated_each = max(d["pss"], d["region"])
    fits_budget = int(budget // dedicated_each) if dedicated_each > 0 else 0
    need = packed.deployments * d["pss"]
    header = "| | packed (`packing: shared`) | dedicated (`packing: dedicated`) |\n|---|---:|---:|"
    return f"""## Packing: how many deployments answer their first call on one machine

`make bench-packing` (bench/packing.py), one run on {run.machine}, {run.date}.
One region (control plane, Envoy, agent, workers and the {clients} client threads on the same
cores; other work on the machine shows in the load average). Demo MLPs (784→128→10, 0.4 MB
files, {files} distinct files); every deployment `min_replicas: 0, max_replicas: 1,
scale_to_zero_after: 0` (nothing runs until invoked; once woken it stays), placed in eu.

{header}
{chr(10).join(rows)}

{chr(10).join(failures) if failures else "No call failed."}

How it was measured. Both phases in one mesh, the dedicated one first; the packed one after the
dedicated deployments were deleted and their processes had stopped. Each deployment's first call is
a real cold start: the gateway routes it to the activator, which holds it while the control
plane scales the deployment to one replica and the agent loads it (packed: a model load over a
shared worker's control port, a new shared worker every {MODELS_PER_SHARED_WORKER} models, the
agent's default; dedicated: a worker process of its own, from the agent's standby interpreter
when one is ready), then Envoy replays it to the replica. Each answer is compared with the same
file run by local torch; no call is retried. Memory after the first pass, once the agent's
reports stopped changing the region's figure: PSS (proportional set size: pages shared between
processes counted once, split among them) of the processes that serve the phase's deployments;
the machine's MemAvailable (/proc/meminfo; it also moves with Envoy, the control plane and
anything else on the machine); and the region's used memory as capacity admission counts it
(GetRegion). Per-deployment figures divide by the deployments started.

What to take from it. Memory: {packed.started:,} packed deployments were loaded at once
in {packed.processes} shared worker processes using {_gib(packed.pss_bytes)} of PSS
({_mib(p["pss"])} each: one interpreter and torch serve {MODELS_PER_SHARED_WORKER} models),
against {_mib(d["pss"])} for each dedicated worker. {packed.deployments:,} dedicated
deployments would need about {_gib(need)} of PSS (extrapolated from the
{dedicated.deployments} measured, not run): about {fits_budget:,} fit this
{run.machine.rsplit(", ", 1)[-1]} machine's region budget of {_gib(budget)}. Capacity
admission counts a packed model at {_mib(p["region"])} (the region's figure per deployment
above): its artifact's recorded footprint, the largest growth a load of that file caused, where
a shared worker's first load counts at the file's size, since it also pays torch's one-time
setup (about 12 MiB, against about 1 MiB for every later load), which is the process's own
memory. Until 2026-12-07 that first load set the footprint of the artifact, every packed copy
was planned at 12 MiB, and the region's budget was full at about 940 of 1,000 models.

Latency: a packed cold start is a model load (tens of milliseconds in the worker), yet the
packed first call took {_ms(percentile(_latencies(packed.first), 50))} p50, growing from
{_ms(percentile(_latencies(tenths(packed.first)[0]), 50))} in the first tenth of the pass to
{_ms(percentile(_latencies(tenths(packed.first)[1]), 50))} in the last as more models were
loaded, and {len(packed.first) - packed.answered} first calls near the end ran out of the route's
30 s request timeout (their models loaded anyway: {packed.started:,} started, and the warm pass
answered {len(_latencies(packed.warm)):,}). The time is the control plane's, not the model's: a
cold start waits for three reconcile passes in a row (the wake that scales the deployment to
one, the agent's report of the loaded model that adds its endpoint, the Envoy ACK of that
endpoint after which the activator hands the request back), and every pass recomputes the
whole network. Read from `meshline_controlplane_rebuild_seconds` during this run (20 s windows):
a pass took 0.29 s on average with about 550 of the 1,000 models loaded, 0.49 s with about 750
and 0.56 s with about 950, and the loop was busy 65 to 75 % of the time. The dedicated first
call, a process start with {dedicated.deployments} deployments in the network, took
{_ms(percentile(_latencies(dedicated.first), 50))} p50.

What was done for this on 2026-12-07 (commits 0e182d5, 2c9c45b, 2464390): the store snapshot
and the plan made of it are reused while the store does not change (and a change plans again
only the deployments it touched); load windows keep one sample per change, not per pass; the
agent reads only the lines it needs of each shared worker's metrics page and of Envoy's
`/clusters`, and asks a shared worker for all its models' states in one call instead of a
health check per model; a shared worker's first load no longer sets its artifact's footprint.
Before them, a run of this bench (2026-12-06) had first calls of 10 to 22 s p50 and 96 of the
first 500 failed; the run before the last two fixes answered 970 of 1,000 first calls and
filled the region's budget. What is left: a pass that touches only what a report, ACK or
wake changed (docs/architecture.md, Known limits).
"""


# -- results on disk ---------------------------------------------------------------------


@dataclass
class Run:
    """One run: its settings, where and when, and each phase measured so far."""

    clients: int
    batch: int
    files: int
    machine: str
    date: str
    phases: dict[str, PhaseResult] = field(default_factory=dict)  # packing → result


def save_run(path: Path, run: Run) -> None:
    """Written after each phase: a run cut short keeps what it measured."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(run), indent=1))


def load_run(path: Path) -> Run:
    data = json.loads(path.read_text())
    phases = {}
    for packing, p in data.pop("phases").items():
        phases[packing] = PhaseResult(
            **{k: v for k, v in p.items() if k not in _NESTED},
            first=[Call(**c) for c in p["first"]],
            warm=[Call(**c) for c in p["warm"]],
            before=Memory(**p["before"]),
            after=Memory(**p["after"]),
            load=(p["load"][0], p["load"][1]),
        )
    return Run(**data, phases=phases)


_NESTED = frozenset({"first", "warm", "before", "after", "load"})


# -- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packed", type=int, default=1000, help="packed deployments (N)")
    parser.add_argument("--dedicated", type=int, default=50, help="dedicated deployments (M)")
    parser.add_argument("--files", type=int, default=4, help="distinct model files")
    parser.add_argument("--batch", type=int, default=100, help="deployments per Apply call")
    parser.add_argument("--clients", type=int, default=4, help="client threads calling")
    parser.add_argument(
        "--cold-start-timeout",
        type=float,
        default=0.0,
        help="scaling.cold_start_timeout of every deployment (0: the default, 30 s)",
    )
    parser.add_argument(
        "--keep", type=Path, help="copy the mesh's logs here at the end, and every call (JSON)"
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="each phase's figures (JSON), as measured"
    )
    parser.add_argument(
        "--render-only", action="store_true", help="no run: the section from --results"
    )
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    run = load_run(args.results) if args.render_only else measure(args)
    text = render(run)
    print(text)
    if not args.no_write:
        write_section(text, args.report)
        print(f"wrote {args.report}")


def measure(args: argparse.Namespace) -> Run:
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    run = Run(args.clients, args.batch, args.files, machine(), f"{datetime.now(UTC):%Y-%m-%d}")
    # A SIGTERM stops the mesh's processes and keeps the logs like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda _signo, _frame: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="meshline-bench-packing-") as tmp:
        state = Path(tmp)
        files = [build_mlp(state / f"mlp-{i}.pt", seed=i) for i in range(args.files)]
        expected = {i: local_torch(f, torch.from_numpy(BATCH)).numpy() for i, f in enumerate(files)}
        try:
            with running_mesh(state / "mesh", regions=(REGION,)) as mesh:
                mesh.apply_resources(base_resources(files), timeout_s=600)
                journal = args.keep / "calls.jsonl" if args.keep else None
                common = (
                    files,
                    expected,
                    args.batch,
                    args.clients,
                    args.cold_start_timeout,
                    journal,
                )
                # The short phase first: a run cut short still has its baseline.
                for packing, n in (("dedicated", args.dedicated), ("shared", args.packed)):
                    run.phases[packing] = run_phase(mesh, packing, n, *common)
                    save_run(args.results, run)
        finally:
            if args.keep:
                shutil.copytree(
                    state / "mesh",
                    args.keep,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.pt", "*.db*", "artifacts"),
                )
    return run


if __name__ == "__main__":
    main()
