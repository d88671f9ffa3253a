"""Failover and offload under steady load: a killed worker, a lost region, a saturated region.

`make bench-failover` (or `python -m bench.failover`): brings up a real three-region network
(eu-west FR and eu-central DE in Europe, us-east US in North America: control plane, three
agents, their Envoys and Torch workers). Each event gets its own deployment; a closed-loop gRPC
client keeps sending through one gateway for ~5 s, the event happens, and it keeps sending for
~8 s more. Every answer (send and answer time, serving region and worker, from the worker's
trailers) and every failure is recorded, and a thread samples the entry gateway's Envoy admin
/clusters every 50 ms, so what the client sees can be put beside what Envoy did.
Writes the "Failover and offload" section of docs/benchmarks.md and prints the same tables.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from bench.report import REPORT, write_section
from controlplane.ir import names
from meshline import wire
from meshline.inference import grpc_service_pb2_grpc as oip_grpc
from meshline.v1 import api_pb2
from tests.e2e.conftest import deployment_yaml
from tests.harness.envoy_admin import read_clusters
from tests.harness.load import Answer, ClientLoop, infer_request
from tests.harness.mesh import Mesh, running_mesh
from tests.harness.processes import wait_until
from workers.demo import build_mlp, build_slow_mlp

EU = ["eu-west", "eu-central"]
REGIONS = ("eu-west", "eu-central", "us-east")
FACTS = {
    "eu-west": {"country": "FR", "continent": "EU"},
    "eu-central": {"country": "DE", "continent": "EU"},
    "us-east": {"country": "US", "continent": "NA"},
}
BATCH = np.random.default_rng(3).standard_normal((1, 784)).astype(np.float32)
POLL_S = 0.05
BUCKET_S = 1.0  # rows of the per-event timelines
RESTART_WAIT_S = 25.0  # the longest event 1 waits for the killed worker to serve again

SECTION = "## Failover and offload"


# -- what Envoy does: its admin /clusters, sampled ------------------------------------------


# The EDS hostnames the control plane gives the regions' gateways.
GATEWAY_HOSTNAMES = {names.gateway_hostname(region): region for region in REGIONS}


def grpc_clusters(deployment: str) -> tuple[str, str]:
    """The gRPC clusters of a deployment's own version (the clients', the region's own
    workers'), as the control plane's IR names them."""
    base = names.route_base(deployment, wire.DEFAULT_ENVIRONMENT)
    return (
        names.backend_clusters(base, "").grpc,
        names.backend_clusters(base, "", local=True).grpc,
    )


@dataclass(frozen=True)
class Host:
    cluster: str
    hostname: str
    flags: str
    weight: int
    priority: int


class AdminSampler:
    """Samples one Envoy's /clusters (the gRPC clusters of one deployment) in a thread."""

    def __init__(self, admin: str, deployment: str) -> None:
        self.admin = admin
        self.clusters = grpc_clusters(deployment)
        self.samples: list[tuple[float, list[Host]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="admin-sampler", daemon=True)

    def _read(self) -> list[Host]:
        stats = {
            key: host
            for key, host in read_clusters(self.admin, timeout_s=1).items()
            if key[0] in self.clusters
        }
        return [
            Host(
                cluster,
                s.get("hostname", address),
                s.get("health_flags", ""),
                int(s.get("weight", "0") or 0),
                int(s.get("priority", "0") or 0),
            )
            for (cluster, address), s in stats.items()
        ]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                hosts = self._read()
            except OSError:  # the Envoy may be the one that died
                hosts = []
            self.samples.append((time.monotonic(), hosts))
            self._stop.wait(POLL_S)

    def first(self, since: float, condition: Callable[[list[Host]], bool]) -> float | None:
        """Monotonic time of the first sample at or after `since` that meets `condition`."""
        found = self.first_sample(since, condition)
        return None if found is None else found[0]

    def first_sample(
        self, since: float, condition: Callable[[list[Host]], bool]
    ) -> tuple[float, list[Host]] | None:
        for t, hosts in list(self.samples):
            if t >= since and condition(hosts):
                return t, hosts
        return None

    def __enter__(self) -> AdminSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def grpc_hosts(hosts: list[Host]) -> list[Host]:
    """The sampler keeps only gRPC clusters: one host per worker or gateway."""
    return hosts


def offload_share(hosts: list[Host], entry: str) -> float:
    """Share of priority-0 weight on other regions' gateways (0 when the entry keeps all)."""
    p0 = [h for h in grpc_hosts(hosts) if h.priority == 0]
    total = sum(h.weight for h in p0)
    away = sum(h.weight for h in p0 if GATEWAY_HOSTNAMES.get(h.hostname, entry) != entry)
    return away / total if total else 0.0


# -- what one event recorded ----------------------------------------------------------------


@dataclass
class Mark:
    what: str
    seconds: float | None  # after the event (None: did not happen while measured)
    target: str = ""


@dataclass
class Run:
    event: str
    setup: str
    answers: list[Answer]
    failed_at: list[float]
    failures: list[str]
    at: float  # monotonic time of the event
    before_s: float
    window_s: float
    marks: list[Mark] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # lines printed under the tables
    phases: list[tuple[float, str]] = field(default_factory=list)  # (seconds after, label)

    def latencies_ms(self, start: float, end: float) -> np.ndarray:
        """Latencies of the answers sent from `start` to `end` seconds after the event."""
        return np.asarray(
            [a.latency * 1000 for a in self.answers if start <= a.sent - self.at < end]
        )

    def timeline(self, end_s: float) -> list[tuple[float, Counter[str], int]]:
        """(bucket start after the event, answers per region, failures) per BUCKET_S."""
        start = -min(self.before_s, 2.0)
        rows = []
        t = start
        while t + BUCKET_S <= end_s + 0.25:  # whole buckets (the last may miss a little)
            served = Counter(a.region for a in self.answers if t <= a.done - self.at < t + BUCKET_S)
            failed = sum(1 for f in self.failed_at if t <= f - self.at < t + BUCKET_S)
            rows.append((t, served, failed))
            t += BUCKET_S
        return rows


def after(t: float | None, at: float) -> float | None:
    return None if t is None else t - at


def _pct(values: np.ndarray, q: float) -> str:
    return f"{np.percentile(values, q):.1f}" if len(values) else "—"


def _secs(value: float | None) -> str:
    return "not seen" if value is None else f"{value:+.2f} s"


# -- mesh helpers ---------------------------------------------------------------------------


def _delete(mesh: Mesh, name: str) -> None:
    mesh.deployments.DeleteDeployment(api_pb2.DeleteDeploymentRequest(name=name), timeout=10)


@contextmanager
def deployed(mesh: Mesh, name: str, text: str, replicas: int | None = None) -> Iterator[None]:
    mesh.apply(text)
    try:
        mesh.wait_ready(name, replicas=replicas)
        yield
    finally:
        _delete(mesh, name)


def with_policies(text: str, policies: str) -> str:
    """Replace the location policy deployment_yaml writes with `policies` (a YAML list)."""
    head, _, _ = text.rpartition("  policies:\n")
    return head + "  policies:\n" + policies


def warm(gateway: str, deployment: str, calls: int) -> None:
    """TorchScript's first calls are slow: send a few through `gateway` before measuring."""
    with grpc.insecure_channel(gateway) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        request = infer_request(deployment, BATCH)
        for _ in range(calls):
            stub.ModelInfer(request, metadata=((wire.DEPLOYMENT_HEADER, deployment),), timeout=30)


def worker_pids(region: str, deployment: str) -> dict[int, str]:
    """pid → worker id of the deployment's workers in `region`."""
    out = subprocess.run(
        ["pgrep", "-f", f"worker-id {region}-{deployment}-"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    pids: dict[int, str] = {}
    for pid in (int(p) for p in out.split()):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if "--worker-id" in args:
            pids[pid] = args[args.index("--worker-id") + 1]
    return pids


def sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))


def steady(loop: ClientLoop, warm_answers: int, before_s: float) -> float:
    """Wait for traffic, then `before_s` of steady state; the event's monotonic time."""
    wait_until(lambda: loop.count() >= warm_answers, 60, "steady traffic")
    at = time.monotonic() + before_s
    sleep_until(at)
    return time.monotonic()


# -- the three events -----------------------------------------------------------------------


def kill_one_worker(
    mesh: Mesh, model: Path, before_s: float, after_s: float, window_s: float
) -> Run:
    name = "fo-worker"
    text = deployment_yaml(name, {"v1": model}, "v1", EU, replicas=2)
    with deployed(mesh, name, text, replicas=2):
        cluster, _ = grpc_clusters(name)
        wait_until(
            lambda: (
                sum(
                    1
                    for flags in mesh.gateway_hosts("eu-west", cluster).values()
                    if flags == "healthy"
                )
                >= 3
            ),
            30,
            "eu-west to route to both workers and eu-central",
        )
        warm(mesh.gateway("eu-west"), name, 20)
        warm(mesh.gateway("eu-central"), name, 20)
        admin = mesh.region("eu-west").status.admin_address
        with (
            AdminSampler(admin, name) as envoy,
            ClientLoop(mesh.gateway("eu-west"), name, BATCH, concurrency=2) as loop,
        ):
            at = steady(loop, 50, before_s)
            pids = worker_pids("eu-west", name)
            if len(pids) != 2:
                raise RuntimeError(f"expected 2 eu-west workers of {name}, found {pids}")
            pid, worker = sorted(pids.items())[0]
            os.kill(pid, signal.SIGKILL)
            at = time.monotonic()
            sleep_until(at + after_s)
            # The agent restarts the worker under the same id: keep the load on until it
            # answers again (bounded), to see when eu-west takes all of its traffic back.
            try:
                wait_until(
                    lambda: any(a.worker == worker and a.sent > at for a in list(loop.answers)),
                    RESTART_WAIT_S,
                    "the killed worker to come back",
                )
                time.sleep(1.5)  # observe eu-west taking its traffic back (a benchmark, not a wait)
            except TimeoutError:
                pass
        answers, failed_at, failures = list(loop.answers), list(loop.failed_at), list(loop.failures)

    def out_of_rotation(hosts: list[Host]) -> bool:
        return not any(h.hostname == worker and h.flags == "healthy" for h in grpc_hosts(hosts))

    last_dead = max((a.done for a in answers if a.worker == worker and a.sent <= at), default=None)
    back = min((a.done for a in answers if a.worker == worker and a.sent > at), default=None)
    ejected = envoy.first_sample(at, out_of_rotation)
    flags = sorted(
        {h.flags for h in grpc_hosts(ejected[1]) if h.hostname == worker} if ejected else set()
    )
    end = max((a.done for a in answers), default=at)
    last_central = max((a.done for a in answers if a.region == "eu-central"), default=None)
    spill_ended = last_central if last_central is not None and last_central < end - 1 else None
    run = Run(
        "1. one of two workers killed (SIGKILL)",
        "EU-only, 2 replicas per region; client at eu-west, c=2, demo MLP",
        answers,
        failed_at,
        failures,
        at,
        before_s,
        window_s,
    )
    if back is not None:
        run.phases = [(0.0, "event"), (back - at, "killed worker back")]
    run.marks = [
        Mark("last answer from the killed worker", after(last_dead, at), "≤ 0 (SIGKILL)"),
        Mark(
            "eu-west's Envoy stops routing to it (not healthy)",
            after(ejected[0] if ejected else None, at),
        ),
        Mark("restarted worker (same id) answers again", after(back, at)),
        Mark("last answer from eu-central (spill over)", after(spill_ended, at)),
    ]
    during = Counter(a.region for a in answers if 0 <= a.done - at < window_s)
    total = sum(during.values())
    run.extra += [
        "the killed worker's flags in eu-west's Envoy when it left rotation: "
        + (", ".join(f"`{f}`" for f in flags) if flags else "(removed)"),
        f"answers in the first {window_s:.0f} s by region: "
        + ", ".join(f"{r} {n} ({n / total:.0%})" for r, n in sorted(during.items())),
    ]
    return run


def saturate_a_region(
    mesh: Mesh, model: Path, before_s: float, after_s: float, window_s: float
) -> Run:
    name = "fo-busy"
    text = with_policies(
        deployment_yaml(name, {"v1": model}, "v1", EU),
        "    - location: {regions: [eu-west, eu-central]}\n"
        "    - offload: {max_inflight_per_replica: 2, max_percent: 80}\n",
    )
    with deployed(mesh, name, text):
        for region in EU:
            warm(mesh.gateway(region), name, 5)
        gateway = mesh.gateway("eu-west")
        admin = mesh.region("eu-west").status.admin_address
        with (
            AdminSampler(admin, name) as envoy,
            ClientLoop(gateway, name, BATCH, concurrency=1) as base,
        ):
            at = steady(base, 20, before_s)
            with ClientLoop(gateway, name, BATCH, concurrency=7) as burst:
                at = time.monotonic()
                sleep_until(at + after_s)
            drop = time.monotonic()
            sleep_until(drop + after_s)
        answers = sorted([*base.answers, *burst.answers], key=lambda a: a.sent)
        failed_at = sorted([*base.failed_at, *burst.failed_at])
        failures = [*base.failures, *burst.failures]

    first_away = min(
        (a.done for a in answers if a.region == "eu-central" and a.done >= at), default=None
    )
    last_away = max(
        (a.done for a in answers if a.region == "eu-central" and a.done >= at), default=None
    )
    pushed = envoy.first(at, lambda hosts: offload_share(hosts, "eu-west") > 0)
    taken_back = envoy.first(drop, lambda hosts: offload_share(hosts, "eu-west") == 0)
    weights = [offload_share(h, "eu-west") for t, h in envoy.samples if at <= t <= drop]
    peak = max(weights, default=0.0)
    mean = sum(weights) / len(weights) if weights else 0.0
    saturated = [a for a in answers if at <= a.done < drop]
    settled = [a for a in saturated if first_away is not None and a.done >= first_away]
    run = Run(
        "2. a region saturated (c 1 → 8 → 1)",
        "slow MLP (~12 ms/call) in eu-west + eu-central, 1 replica each, "
        "offload {max_inflight_per_replica: 2, max_percent: 80}; client at eu-west",
        answers,
        failed_at,
        failures,
        at,
        before_s,
        window_s,
        phases=[(0.0, "event: c=8"), (drop - at, "c=1 again")],
    )
    run.marks = [
        Mark("eu-west's Envoy gets offload weights (EDS)", after(pushed, at)),
        Mark("first answer from eu-central", after(first_away, at)),
        Mark("load drops back to c=1", drop - at),
        Mark("eu-west's Envoy back to 0% offload", after(taken_back, at)),
        Mark(
            "last answer from eu-central (eu-west 100% after)",
            after(last_away, at),
        ),
    ]
    share_all = _share(saturated, "eu-central")
    share_settled = _share(settled, "eu-central")
    run.extra += [
        f"offloaded to eu-central while c=8: {share_all:.0%} of {len(saturated)} answers "
        f"({share_settled:.0%} after the first offloaded answer); "
        f"offload weight in eu-west's Envoy while c=8: mean {mean:.0%}, peak {peak:.0%}",
        f"eu-west serves 100% again {_secs(None if last_away is None else last_away - drop)} "
        "after the load drops",
    ]
    return run


def _share(answers: Sequence[Answer], region: str) -> float:
    return sum(1 for a in answers if a.region == region) / len(answers) if answers else 0.0


def lose_a_region(mesh: Mesh, model: Path, before_s: float, after_s: float, window_s: float) -> Run:
    """Runs last: eu-central's agent, Envoy and workers stay dead."""
    name = "fo-region"
    text = with_policies(
        deployment_yaml(name, {"v1": model}, "v1", EU), "    - location: {continents: [EU]}\n"
    )
    with deployed(mesh, name, text):
        cluster, _ = grpc_clusters(name)
        wait_until(
            lambda: (
                mesh.gateway_hosts("us-east", cluster)
                == {names.gateway_hostname(region): "healthy" for region in EU}
            ),
            30,
            "us-east to see both EU gateways healthy",
        )
        for region in EU:
            warm(mesh.gateway(region), name, 20)
        admin = mesh.region("us-east").status.admin_address
        with (
            AdminSampler(admin, name) as envoy,
            ClientLoop(mesh.gateway("us-east"), name, BATCH, concurrency=2) as loop,
        ):
            at = steady(loop, 50, before_s)
            os.kill(mesh.agents["eu-central"].pid, signal.SIGKILL)
            at = time.monotonic()
            sleep_until(at + after_s)
        answers, failed_at, failures = list(loop.answers), list(loop.failed_at), list(loop.failures)

    def central_out(hosts: list[Host]) -> bool:
        return not any(
            h.hostname == names.gateway_hostname("eu-central") and h.flags == "healthy"
            for h in grpc_hosts(hosts)
        )

    last_central = max((a.done for a in answers if a.region == "eu-central"), default=None)
    first_west = min(
        (a.done for a in answers if a.region == "eu-west" and a.done >= at), default=None
    )
    done_times = [a.done for a in answers if a.done >= at]
    gaps = np.diff([at, *done_times]) if done_times else np.asarray([])
    run = Run(
        "3. a whole region lost (SIGKILL eu-central's agent)",
        "EU-only, 1 replica per region; client at us-east (served by eu-central), c=2, demo MLP",
        answers,
        failed_at,
        failures,
        at,
        before_s,
        window_s,
    )
    run.marks = [
        Mark("last answer from eu-central", after(last_central, at), "≤ 2 s"),
        Mark("first answer from eu-west", after(first_west, at), "≤ 2 s"),
        Mark(
            "us-east's Envoy marks gateway.eu-central not healthy",
            after(envoy.first(at, central_out), at),
        ),
    ]
    run.extra.append(
        f"longest time without any answer after the kill: {gaps.max() * 1000:.0f} ms"
        if len(gaps)
        else "no answers after the kill"
    )
    return run


# -- report ---------------------------------------------------------------------------------


def render(runs: list[Run], after_s: float) -> str:
    before_s = runs[0].before_s
    window_s = runs[0].window_s
    lines = [
        SECTION,
        "",
        "Generated by `make bench-failover` (`python -m bench.failover`). Three regions on one",
        "machine — eu-west (FR) and eu-central (DE) in Europe, us-east (US) in North America —",
        "each with its own agent, Envoy and Torch workers, and one control plane. Each event",
        "runs on a fresh deployment under a closed-loop gRPC client (threads in the benchmark",
        "process, 10 s timeout, no client-side retries) that enters at one gateway:",
        f"~{before_s:.0f} s steady, the event, ~{after_s:.0f} s more (event 1 keeps going until",
        "the killed worker serves again; event 2 holds the higher load for "
        f"{after_s:.0f} s, then {after_s:.0f} s",
        "more at c=1). *Requests* counts all the client sent for the event, warm-up included.",
        f"Latencies are client-side, by send time: *before* is the {before_s:.0f} s before the",
        f"event, *during* the first {window_s:.0f} s after it. Every answer names the region and",
        "worker that served it (`x-meshline-region` / `x-meshline-worker` trailers), and a thread",
        "samples the entry gateway's Envoy admin `/clusters` every 50 ms. Times are seconds after",
        f"the event. Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; every process of the network shares these cores.",
        "",
        "| event | requests | failed | p50 before (ms) | p99 before (ms) "
        "| p50 during (ms) | p99 during (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        before = r.latencies_ms(-r.before_s, 0)
        during = r.latencies_ms(0, r.window_s)
        lines.append(
            f"| {r.event} | {len(r.answers) + len(r.failed_at)} | {len(r.failed_at)} | "
            f"{_pct(before, 50)} | {_pct(before, 99)} | {_pct(during, 50)} | {_pct(during, 99)} |"
        )
    lines += ["", "| event | what | after the event | target |", "|---|---|---:|---|"]
    for r in runs:
        for m in r.marks:
            lines.append(
                f"| {r.event.split('.')[0]} | {m.what} | {_secs(m.seconds)} | {m.target} |"
            )
    lines.append("")
    for r in runs:
        lines.append(f"- **{r.event}** — {r.setup}.")
        for extra in r.extra:
            lines.append(f"  - {extra}.")
        if r.failures:
            kinds = Counter(r.failures)
            lines.append(
                "  Failures: " + "; ".join(f"{n} x `{f}`" for f, n in kinds.most_common(3)) + "."
            )
    lines += [READING, OFFLOAD]
    lines += ["Answers per second by serving region (t = seconds after the event):", ""]
    for r in runs:
        end_s = max((a.done for a in r.answers), default=r.at) - r.at
        regions = sorted({a.region for a in r.answers})
        lines += [
            "<details>",
            f"<summary>{r.event}</summary>",
            "",
            "| t (s) | " + " | ".join(regions) + " | failed | |",
            "|---:|" + "---:|" * len(regions) + "---:|---|",
        ]
        phases = r.phases or [(0.0, "event")]
        for t, served, failed in r.timeline(end_s):
            label = ", ".join(p for s, p in phases if t <= s < t + BUCKET_S)
            lines.append(
                f"| {t:+.0f} | "
                + " | ".join(str(served[g]) for g in regions)
                + f" | {failed} | {label} |"
            )
        lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip() + "\n"


READING = """
Reading the figures. No event failed a request: every request that met a dead worker or a dead
gateway failed before it reached a model (connection refused or reset), and Envoy's retry
policy replays exactly those on another host, then on the next region.

- *Worker killed.* The worker leaves eu-west's rotation within about 0.1 s, from two sides at
  once: Envoy's outlier detection ejects it after 3 consecutive gateway failures, and the agent,
  which sees the exit, reports it and the control plane pushes it as unhealthy in EDS
  (`/failed_eds_health`). About 30 % of eu-west's traffic then goes to eu-central although one
  local worker is still healthy: that is Envoy's priority load with its default overprovisioning
  factor of 1.4 — priority 0 at 50 % healthy hosts keeps 1.4 x 50 % = 70 %, the rest spills to
  the next priority (eu-central's gateway). It ends when the agent has restarted the worker
  under the same id (0.5 s back-off, process start, Torch load, health check): a few seconds
  to ~15 s on this 2-core machine, where every process of the network shares the cores.
- *Region saturated.* See below; the shares are of answers, the weights are what eu-west's
  Envoy was told. The weight moves between steps because `rq_active` is one sample every
  0.5 s, not an average, so the time-averaged offload sits below `max_percent`.
- *Region lost.* Killing eu-central's agent takes its Envoy and workers with it, so every
  connection to that gateway is refused or reset at once: us-east's Envoy retries those
  requests on the next priority (eu-west) and ejects `gateway.eu-central` within tens of ms.
  The control plane is not involved; it only removes the region from EDS later. A region
  that stops answering without closing connections (a network partition) would be found by
  active health checks instead (1 s interval, 2 s timeout, 3 failures): that case is slower
  and not measured here.
"""

OFFLOAD = """
How offload reacts (`controlplane/offload.py`). One small state machine per (environment,
deployment, region), kept by the control plane:

- *Signal.* Each agent reads its Envoy's admin `/clusters` every 0.5 s and takes `rq_active`,
  Envoy's own count of requests in flight to each local worker; it reports when a count
  changed. The control plane rebuilds 20 ms after a report (debounce), and every 0.5 s on its
  own while any region offloads.
- *Target.* With *k* the share the region keeps now, demand per replica is
  `in-flight per replica / k`. Above `max_inflight_per_replica` the target is
  `1 - threshold / demand`, rounded up to 10 % steps and capped at `max_percent`; otherwise 0.
- *Grow at once, shrink slowly.* A higher target is applied at the next rebuild; a lower one
  one 10 % step per 0.5 s cooldown. A region that recovered takes its traffic back within about
  `max_percent / 10 * 0.5 s` (4 s for 80 %) without flapping.
- *Push.* A new percentage becomes new EDS weights for the entry region: the offload targets'
  gateways join its own workers in priority 0, weighted by their shares (everything else stays
  in failover order).

So the first offloaded answer comes at most one sampling period (0.5 s) + 20 ms + one EDS push
after the load rises (event 2's rows above), and the way back takes the step-down schedule
plus the same delays: about 4 s from 80 %.
"""


# -- main -----------------------------------------------------------------------------------


def print_tables(text: str) -> None:
    """The tables and per-event notes (not the prose or the timelines)."""
    for line in text.split(READING)[0].splitlines():
        if line.startswith(("|", "- ", "  ")):
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=float, default=5.0, help="steady seconds before")
    parser.add_argument("--after", type=float, default=8.0, help="seconds after the event")
    parser.add_argument("--window", type=float, default=3.0, help="'during' latency window")
    parser.add_argument("--events", default="worker,offload,region", help="which, in order")
    parser.add_argument("--report", type=Path, default=REPORT, help="markdown file to update")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    events = {"worker": kill_one_worker, "offload": saturate_a_region, "region": lose_a_region}
    chosen = args.events.split(",")
    if "region" in chosen and chosen[-1] != "region":
        parser.error("the region event kills eu-central for good: it must come last")
    started = time.monotonic()
    runs = []
    with tempfile.TemporaryDirectory(prefix="meshline-bench-") as tmp:
        state = Path(tmp)
        fast = build_mlp(state / "mlp.pt", seed=0)
        slow = build_slow_mlp(state / "slow.pt", rounds=40)
        with running_mesh(state, regions=REGIONS, region_facts=FACTS) as mesh:
            for event in chosen:
                model = slow if event == "offload" else fast
                print(f"[{time.monotonic() - started:5.0f} s] {event} ...", flush=True)
                runs.append(events[event](mesh, model, args.before, args.after, args.window))
    text = render(runs, args.after)
    print_tables(text)
    print(f"[{time.monotonic() - started:5.0f} s] done", flush=True)
    if not args.no_write:
        write_section(text, args.report)
        print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
