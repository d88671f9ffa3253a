"""mTLS between gateways: what it costs on the forwarded path, and whether a rotation drops a
request.

`python -m bench.mtls` runs two parts and writes its section of docs/benchmarks.md:

1. *Throughput through two gateways.* Static Envoys (IR → translate → static_bootstrap, no
   control plane; the same resources the control plane sends, secrets inline): an entry
   gateway (`us`) that runs nothing and forwards to a serving gateway (`eu`) in front of one
   Torch worker. Three such pairs share that worker and differ only in their peer path: mTLS
   (the default: certificates from a mesh CA made here, TLS 1.3, the peer's identity checked),
   plain text (the benchmark-only switch), and plain text again (A/A: this run's noise). Runs
   alternate the pairs (order rotated every round); each cell keeps the median-throughput run.
   The two Envoys' CPU per request (from /proc) is reported too.
2. *Rotation under load.* A real mesh (control plane with short gateway certificates, two
   regions with their agents, Envoys and one worker): a closed-loop client at c=16 enters at
   `us` for a deployment that runs only in `eu`, while the certificates rotate (seen on each
   Envoy's admin `/certs`) and, in a second run, while the control plane restarts (it makes new
   certificates for every region). Failed requests are counted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import textwrap
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.ab import DEPLOYMENT, cpu_seconds, worker
from bench.load import LoadResult, load_subprocess
from bench.report import REPORT, write_section
from controlplane.ir import DeploymentRoute, Endpoint, GatewayIR
from controlplane.ir.model import TIER_GATEWAY, Backend, PeerPath, Tier
from controlplane.pki.ca import MeshCA, create_ca
from controlplane.pki.gateway import issue_gateway_certificate
from controlplane.policy.access import AccessSettings
from controlplane.reconcile.identities import gateway_tls
from controlplane.translate import translate_gateway
from controlplane.translate.static_bootstrap import static_bootstrap_yaml
from meshline import wire
from tests.harness.envoy_admin import read_clusters
from tests.harness.load import rest_infer
from tests.harness.mesh import Mesh, running_mesh
from tests.harness.processes import ManagedProcess, free_port, port_open, wait_until
from workers.demo import build_mlp

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## mTLS between gateways: forwarded-path throughput and rotation under load"
HOST = "127.0.0.1"
SERVING, ENTRY = "eu", "us"
FEATURES = 784
BATCH = np.random.default_rng(5).standard_normal((1, FEATURES)).astype(np.float32)
# Target from issue 14: the forwarded path with mTLS against without.
MIN_RATIO = 0.9


# -- part 1: static gateway pairs ---------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    mtls: bool
    control: bool = False  # the baseline again under another name (A/A)


VARIANTS = (
    Variant("plain", "plain text (benchmark-only switch)", mtls=False),
    Variant("mtls", "mTLS (default)", mtls=True),
    Variant("plain-aa", "plain text again (A/A)", mtls=False, control=True),
)


@dataclass(frozen=True)
class Pair:
    """A running entry + serving gateway pair; clients call the entry."""

    variant: Variant
    target: str
    pids: tuple[int, int]


def _peer(ca: MeshCA, region: str, port: int, other: str, mtls: bool) -> PeerPath:
    if not mtls:
        return PeerPath(HOST, port, None, (other,), plaintext=True)
    issued = issue_gateway_certificate(ca, region, datetime.now(UTC), timedelta(hours=2))
    return PeerPath(HOST, port, gateway_tls(issued, ca.bundle_pem.decode()), (other,))


def pair_irs(ca: MeshCA, mtls: bool, worker_ports: tuple[int, int]) -> tuple[GatewayIR, GatewayIR]:
    """(serving, entry): the deployment runs in `eu` only; `us` forwards every request."""
    open_access = AccessSettings.open()
    serving_peer = free_port()
    local = Endpoint("torch", HOST, *worker_ports)
    serving = GatewayIR(
        SERVING,
        HOST,
        free_port(),
        (DeploymentRoute.local(DEPLOYMENT, "production", (local,), SERVING, access=open_access),),
        peer=_peer(ca, SERVING, serving_peer, ENTRY, mtls),
    )
    eu = Endpoint(f"gateway.{SERVING}", HOST, serving_peer, serving_peer)
    forwarded = Backend(
        "", "v1", tiers=(Tier(SERVING, TIER_GATEWAY, 0, (eu,)),), local_endpoints=None
    )
    entry = GatewayIR(
        ENTRY,
        HOST,
        free_port(),
        (DeploymentRoute(DEPLOYMENT, "production", (forwarded,), access=open_access),),
        peer=_peer(ca, ENTRY, free_port(), SERVING, mtls),
    )
    return serving, entry


@contextmanager
def static_envoy(ir: GatewayIR, logs: Path, name: str) -> Iterator[int]:
    """Envoy running `ir` once every host passed its health check; yields its pid. Its
    config file holds the private key (the benchmark's own, throwaway): 0600."""
    admin = free_port()
    config = logs / f"{name}.yaml"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(static_bootstrap_yaml(translate_gateway(ir), admin_port=admin))
    binary = Path(sys.executable).parent / "envoy"
    args = [str(binary), "-c", str(config), "--disable-hot-restart", "--log-level", "warn",
            "--concurrency", "1", "--base-id", str(admin)]  # fmt: skip
    process = ManagedProcess(name, args, logs)
    try:
        wait_until(lambda: port_open(HOST, ir.listen_port), 30, f"{name}'s listener")

        def healthy() -> bool:
            hosts = read_clusters(f"{HOST}:{admin}")
            return bool(hosts) and all(h.get("health_flags") == "healthy" for h in hosts.values())

        wait_until(healthy, 30, f"{name}'s health checks to pass")
        yield process.pid
    finally:
        process.stop()


@contextmanager
def gateway_pairs(state: Path) -> Iterator[list[Pair]]:
    logs = state / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    model = build_mlp(state / "demo.pt", seed=0)
    ca = create_ca(datetime.now(UTC))
    with ExitStack() as stack:
        _, grpc_port, http_port = stack.enter_context(
            worker(ROOT, model, logs, "worker-mtls", FEATURES)
        )
        pairs = []
        for v in VARIANTS:
            serving, entry = pair_irs(ca, v.mtls, (grpc_port, http_port))
            serving_pid = stack.enter_context(static_envoy(serving, logs, f"envoy-{v.key}-eu"))
            # Every entry host healthy: its probes passed the serving peer listener.
            entry_pid = stack.enter_context(static_envoy(entry, logs, f"envoy-{v.key}-us"))
            pairs.append(Pair(v, f"{HOST}:{entry.listen_port}", (entry_pid, serving_pid)))
        for pair in pairs:  # forwarded and served: a refused peer path would fail here
            rest_infer(pair.target, DEPLOYMENT, BATCH, timeout_s=10)
        yield pairs


@dataclass(frozen=True)
class Run:
    result: LoadResult
    envoy_us: float  # both Envoys' CPU per request, µs


@dataclass
class Cell:
    protocol: str
    concurrency: int
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def median(self, key: str) -> Run:
        ordered = sorted(self.runs[key], key=lambda r: r.result.throughput)
        return ordered[len(ordered) // 2]

    def envoy_us(self, key: str) -> float:
        return statistics.median(r.envoy_us for r in self.runs[key])


def one_run(pair: Pair, protocol: str, c: int, seconds: float) -> Run:
    warmup = 0.5
    before = sum(cpu_seconds(pid) for pid in pair.pids)
    result = load_subprocess(
        pair.target, deployment=DEPLOYMENT, concurrency=c, seconds=seconds, protocol=protocol,
        warmup_s=warmup,
    )  # fmt: skip
    used = sum(cpu_seconds(pid) for pid in pair.pids) - before
    per_request = used / max(1.0, result.throughput * (seconds + warmup))
    return Run(result, per_request * 1e6)


def measure(
    pairs: Sequence[Pair], protocols: Sequence[str], concurrencies: Sequence[int], rounds: int,
    seconds: float,
) -> list[Cell]:  # fmt: skip
    cells = []
    for protocol in protocols:
        for c in concurrencies:
            cell = Cell(protocol, c, {p.variant.key: [] for p in pairs})
            for i in range(rounds):
                order = [pairs[(i + j) % len(pairs)] for j in range(len(pairs))]
                for pair in order:
                    cell.runs[pair.variant.key].append(one_run(pair, protocol, c, seconds))
            cells.append(cell)
            line = ", ".join(
                f"{p.variant.key} {cell.median(p.variant.key).result.throughput:.0f}/s "
                f"p50 {cell.median(p.variant.key).result.p50_ms:.2f}"
                for p in pairs
            )
            print(f"{protocol} c={c}: {line}", flush=True)
    return cells


# -- part 2: rotation on the real mesh ---------------------------------------------------------


@dataclass
class Rotation:
    what: str
    result: LoadResult
    serials: dict[str, int]  # region → distinct gateway certificates seen during the run


def _serials(mesh: Mesh, region: str) -> set[str]:
    admin = mesh.region(region).status.admin_address
    with urllib.request.urlopen(f"http://{admin}/certs", timeout=5) as reply:
        certs = json.loads(reply.read())
    own = wire.region_spiffe_id(region)
    return {
        cert["serial_number"]
        for context in certs.get("certificates", [])
        for cert in context.get("cert_chain", [])
        if any(san.get("uri") == own for san in cert.get("subject_alt_names", []))
    }


def _deployment_yaml(model: Path) -> str:
    return f"""\
kind: Environment
metadata: {{name: production}}
spec:
  policies:
    - access: {{anonymous: true}}
---
kind: Model
metadata: {{name: mlp}}
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
  model: mlp
  version: v1
  replicas: 1
  policies:
    - location: {{regions: [{SERVING}]}}
"""


def loaded(mesh: Mesh, seconds: float, restart_at: float | None) -> Rotation:
    """c=16 through `us` for `seconds`, the certificates watched; the control plane restarted
    `restart_at` seconds in (None: not)."""
    seen: dict[str, set[str]] = {r: set() for r in (SERVING, ENTRY)}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for region in seen:
                try:
                    seen[region] |= _serials(mesh, region)
                except Exception:  # the control plane restarting: look again next time
                    pass
            stop.wait(0.5)

    def restart() -> None:
        if restart_at is None or stop.wait(restart_at):
            return
        mesh.restart_controlplane()

    threads = [threading.Thread(target=watch), threading.Thread(target=restart)]
    for thread in threads:
        thread.start()
    try:
        result = load_subprocess(
            mesh.gateway(ENTRY), deployment=DEPLOYMENT, concurrency=16, seconds=seconds,
            protocol="grpc",
        )  # fmt: skip
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    what = "control-plane restart" if restart_at is not None else "rotations"
    return Rotation(what, result, {r: len(s) for r, s in seen.items()})


def run_rotations(state: Path, ttl: str, seconds: float) -> list[Rotation]:
    model = build_mlp(state / "mesh-demo.pt", seed=0)
    with running_mesh(
        state / "mesh", regions=(SERVING, ENTRY), controlplane_flags=("--gateway-cert-ttl", ttl)
    ) as mesh:
        mesh.apply(_deployment_yaml(model))
        mesh.wait_ready(DEPLOYMENT)
        rest_infer(mesh.gateway(ENTRY), DEPLOYMENT, BATCH, timeout_s=10)
        out = [loaded(mesh, seconds, None), loaded(mesh, seconds, seconds / 3)]
        for r in out:
            print(f"{r.what}: {r.result.errors} failed of {r.result.requests}, {r.serials}")
        return out


# -- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    protocols: tuple[str, ...]
    concurrencies: tuple[int, ...]
    rounds: int
    seconds: float
    ttl: str
    rotation_seconds: float
    command: str


def _fill(text: str, indent: str = "") -> str:
    return textwrap.fill(text, 100, subsequent_indent=indent, break_on_hyphens=False)


def throughput_table(cells: Sequence[Cell]) -> list[str]:
    rows = [
        "| protocol | c | peer path | req/s | vs plain text | p50 ms | p99 ms "
        "| Envoy CPU/req (2 gateways) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cell in cells:
        base = cell.median("plain")
        for v in VARIANTS:
            run = cell.median(v.key)
            ratio = run.result.throughput / base.result.throughput
            cpu = cell.envoy_us(v.key)
            delta = cpu - cell.envoy_us("plain")
            extra = "" if v.key == "plain" else f" ({delta:+.0f})"
            errors = f", {run.result.errors} errors" if run.result.errors else ""
            rows.append(
                f"| {cell.protocol} | {cell.concurrency} | {v.label} | "
                f"{run.result.throughput:.0f}{errors} | {ratio:.2f}x | {run.result.p50_ms:.2f} | "
                f"{run.result.p99_ms:.2f} | {cpu:.0f} µs{extra} |"
            )
    return rows


def rotation_table(results: Sequence[Rotation]) -> list[str]:
    rows = [
        "| during | requests | failed | certificates seen at eu | at us |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r.what} | {r.result.requests} | {r.result.errors} | {r.serials[SERVING]} | "
            f"{r.serials[ENTRY]} |"
        )
    return rows


def render(cells: Sequence[Cell], rotations: Sequence[Rotation], s: Settings) -> str:
    lines = [
        SECTION,
        "",
        _fill(
            f"Generated by `{s.command}` (bench/mtls.py). One run on the 2-core development "
            f"machine ({platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}), shared with other work at the time: the client, "
            "the gateways and the worker share the two cores, so only same-run ratios are worth "
            "comparing."
        ),
        "",
        "### 1. Throughput through two gateways (the forwarded path)",
        "",
        _fill(
            "Static Envoys (IR → translate → static_bootstrap: the resources the control plane "
            "sends, secrets inline), each `--concurrency 1`: the entry gateway `us` runs nothing "
            "and forwards every request to the serving gateway `eu`, in front of one Torch "
            "worker (demo MLP, 784→128→10, 1 row, FP32) that all pairs share. Three pairs differ "
            "only in their peer path: *mTLS* (the default; EC P-256 certificates of a mesh CA "
            "made here, TLS 1.3, the serving gateway requires a client certificate naming a "
            "region and the entry checks the server's exact region identity), *plain text* (the "
            "benchmark-only switch, `--peer-plaintext` on a real control plane), and plain text "
            "again (A/A: how far two identical pairs differ in this run). No authentication "
            "(`access: {anonymous: true}`), so the peer path is the only difference. Closed-loop "
            f"client (bench.load, its own process); each cell is the median-throughput run of "
            f"{s.rounds} rounds of {s.seconds:g} s, the order rotated each round. *Envoy CPU/req* "
            "is both gateways' CPU time per request (from /proc, median of the rounds; in "
            f"brackets the difference to plain text). Target (issue 14): ≥ {MIN_RATIO} of the "
            "plain-text throughput at c=16."
        ),
        "",
        *throughput_table(cells),
        "",
        "### 2. Failed requests while certificates rotate",
        "",
        _fill(
            f"A real mesh: control plane with `--gateway-cert-ttl {s.ttl}` (a new certificate "
            "two thirds into that), regions eu (runs the deployment) and us (forwards it), each "
            "with its agent, Envoy and the eu worker. A closed-loop gRPC client at c=16 enters "
            f"at us for {s.rotation_seconds:g} s, twice: while the certificates rotate, and "
            "while the control plane restarts a third of the way in (it makes new certificates "
            "for every region: the old ones were only in its memory). *Certificates seen* counts "
            "the distinct serials each Envoy's admin `/certs` showed as its own during the run. "
            "Target: 0 failed requests."
        ),
        "",
        *rotation_table(rotations),
    ]
    return "\n".join(lines) + "\n" + READING


# Written by hand from the full run (see the section's heading line); the tables above are
# regenerated by every run.
READING = """
Reading the figures (written by hand from the run above; other test suites were running on the
machine at the same time, load average 5-8 on its two cores).

- *Throughput: no cost that this run can see.* The mTLS pair did 1.08x (gRPC) and 1.13x (REST)
  of the plain-text pair's requests per second, and the A/A pair, identical to plain text, did
  1.08x and 1.05x: all three are the same within this machine's noise, and the issue's target
  (≥ 0.9) holds. The gateways' CPU per request tells the same: +16 µs (gRPC) and -4 µs (REST)
  for mTLS against +23 µs and -22 µs for A/A, i.e. nothing measurable on top of ~320 µs. That
  is what the design predicts: the entry gateway keeps its HTTP/2 (gRPC) or HTTP/1.1 keep-alive
  connections to the peer, so a TLS handshake happens once per connection, not per request, and
  what remains is AES-GCM on a few KB per request (hardware AES).
- *The tail is not settled.* The mTLS pair's p99 was higher in both protocols (57 vs 38 ms gRPC,
  101 vs 32 ms REST), beyond the A/A spread (25-46 ms), while its p50 was lower. One run on a
  loaded 2-core machine cannot tell a TLS effect (a handshake when a connection is replaced)
  from descheduling; a run on a quiet machine, with the gateways on cores of their own, would.
- *Rotation under load: 0 failed requests.* With 9 s certificates (a new one every ~6 s), 31 411
  requests through the forwarded path in 30 s saw no failure while each Envoy took ~5 new
  certificates (7 distinct serials seen in `/certs`: an Envoy shows the previous one as long as
  a TLS context still holds it). A control-plane restart a third of the way into another 30 s
  (new certificates for every region, made by the new process) failed no request either: the
  Envoys served with the config they had while it was down and swapped the certificates in
  when it was back.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--protocols", default="grpc,rest-binary")
    parser.add_argument("--concurrency", default="16")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--ttl", default="9s", help="gateway certificate lifetime (part 2)")
    parser.add_argument("--rotation-seconds", type=float, default=30.0)
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()
    settings = Settings(
        tuple(args.protocols.split(",")),
        tuple(int(c) for c in args.concurrency.split(",")),
        args.rounds,
        args.seconds,
        args.ttl,
        args.rotation_seconds,
        f"python -m bench.mtls --protocols {args.protocols} --concurrency {args.concurrency} "
        f"--rounds {args.rounds} --seconds {args.seconds:g} --ttl {args.ttl} "
        f"--rotation-seconds {args.rotation_seconds:g}",
    )
    with tempfile.TemporaryDirectory(prefix="meshline-bench-mtls-") as tmp:
        state = Path(tmp)
        with gateway_pairs(state / "static") as pairs:
            cells = measure(
                pairs, settings.protocols, settings.concurrencies, settings.rounds,
                settings.seconds,
            )  # fmt: skip
        rotations = run_rotations(state, settings.ttl, settings.rotation_seconds)
    text = render(cells, rotations, settings)
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
