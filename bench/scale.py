"""Scale: a control plane with N deployments x 3 regions (N = 1,000 and 10,000).

A real control plane (subprocess) and three real agents, each with its real Envoy and no
worker: every deployment is `min_replicas: 0`, so nothing runs until invoked (no request is
sent here). Measured for each size, in one run:

1. apply time: the deployments applied in batches of `--batch` per Apply call (one call of
   10,000 would pass gRPC's default 4 MiB message limit on the way in), then until
   `ListDeployments` shows every one Ready (every region ACKed a config that routes to it).
2. full translate time: the translate stage called in-process on the network's IR, built from a
   copy of the control plane's store with the same pure functions the control plane uses; each
   gateway from scratch, then one deployment changed (what the per-deployment cache saves).
3. one deployment change → every region ACKed: `--changes` changes of one deployment's
   request timeout (a route change), each timed from the Apply call until all three regions'
   Envoys ACKed the route table that carries it (the control plane's record of the ACK, read
   through `ListRegions` every 20 ms), p50 and p99.
4. memory: the control plane's and each Envoy's resident set (VmRSS), after the changes.
5. `get deployments`: `ListDeployments` with status, all pages, median of 5 calls; and its
   first page (what a terminal shows first).
6. the sizes of what each gateway gets over xDS per type (largest resource, all resources).

Writes the "Scale" section of docs/benchmarks.md and prints the same table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from bench.report import REPORT, ROOT, write_section
from controlplane.api.documents import parse_resource_document
from controlplane.ir.build import ColdRegions, GatewayAddress, activator_endpoint, build_network
from controlplane.ir.model import GatewayIR, NetworkIR
from controlplane.pki.ca import create_ca
from controlplane.reconcile.identities import GatewayIdentities
from controlplane.reconcile.plan import plan_network
from controlplane.store import Store
from controlplane.translate import translate_gateway
from controlplane.translate.translator import GatewayTranslator
from meshline.keys import PlacedTrackKey
from meshline.phases import DeploymentPhase
from meshline.v1 import api_pb2, resources_pb2
from tests.harness.mesh import Mesh, running_mesh
from tests.harness.processes import wait_until
from workers.demo import build_mlp

REGIONS = ("eu", "us", "ap")
ENVIRONMENT = "production"
MODEL = "tiny"
ROUTES = "routes"  # the RDS row of a region's acked_versions
POLL_S = 0.02
CHANGE_TIMEOUT_S = 600.0
LISTINGS = 3  # timed `get deployments` calls per size (median)
PROTOCOLS = {"sotw": "SotW", "delta": "Delta"}
TARGETS = {
    "translate_10k_s": 1.0,
    "change_p50_1k_s": 0.1,
    "change_p50_10k_s": 0.3,
    "list_10k_s": 0.5,
}


def deployment_name(i: int) -> str:
    return f"d{i:05d}"


def _resource(doc: dict[str, object]) -> api_pb2.Resource:
    return parse_resource_document(doc, "<bench>", 0)


def base_resources(model: Path) -> list[api_pb2.Resource]:
    """The environment (anyone may call) and the one model every deployment serves."""
    return [
        _resource(
            {
                "kind": "Environment",
                "metadata": {"name": ENVIRONMENT},
                "spec": {"policies": [{"access": {"anonymous": True}}]},
            }
        ),
        _resource(
            {
                "kind": "Model",
                "metadata": {"name": MODEL},
                "spec": {
                    "versions": [
                        {
                            "name": "v1",
                            "runtime": "torch",
                            "path": str(model),
                            "signature": {
                                "inputs": [
                                    {"name": "input", "datatype": "FP32", "shape": [-1, 784]}
                                ],
                                "outputs": [
                                    {"name": "output", "datatype": "FP32", "shape": [-1, 10]}
                                ],
                            },
                        }
                    ]
                },
            }
        ),
    ]


def deployment(i: int, timeout_s: float = 0.0) -> api_pb2.Resource:
    """Deployment `i`: serverless (nothing runs until invoked), in every region; a request
    timeout when given (the change the benchmark makes)."""
    spec: dict[str, object] = {
        "environment": ENVIRONMENT,
        "model": MODEL,
        "version": "v1",
        "scaling": {"min_replicas": 0, "max_replicas": 1},
    }
    if timeout_s:
        spec["policies"] = [{"routing": {"timeout_s": timeout_s}}]
    return _resource({"kind": "Deployment", "metadata": {"name": deployment_name(i)}, "spec": spec})


def batches(items: Sequence[api_pb2.Resource], size: int) -> Iterator[Sequence[api_pb2.Resource]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def list_all(mesh: Mesh, page_size: int = 0) -> list[api_pb2.Resource]:
    """Every deployment with its status, following `next_page_token` when the server pages."""
    out: list = []
    token = ""
    while True:
        reply = mesh.deployments.ListDeployments(
            api_pb2.ListDeploymentsRequest(page_size=page_size, page_token=token), timeout=600
        )
        out += reply.deployments
        token = reply.next_page_token
        if not token:
            return out


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def envoy_pids(mesh: Mesh, region: str, fake: bool = False) -> list[int]:
    """The Envoy (or the stand-in) the agent of `region` runs (in its process group)."""
    which = ["-f", "bench.fake_envoy"] if fake else ["-x", "envoy"]
    out = subprocess.run(
        ["pgrep", "-g", str(mesh.agents[region].pid), *which],
        capture_output=True,
        text=True,
        check=False,
    )
    return [int(pid) for pid in out.stdout.split()]


def region_status(mesh: Mesh, name: str) -> resources_pb2.RegionStatus:
    """`mesh.region(name).status`, waiting as long as a change may take: at 10,000
    deployments one rebuild holds the control plane's event loop for seconds."""
    request = api_pb2.GetRegionRequest(name=name)
    status: resources_pb2.RegionStatus = mesh.regions_api.GetRegion(
        request, timeout=CHANGE_TIMEOUT_S
    ).region.status
    return status


def join_token(mesh: Mesh, region: str) -> str:
    """A join token for `region` (no facts), made with the bench's own deadline."""
    request = api_pb2.CreateJoinTokenRequest(spec=resources_pb2.JoinTokenSpec(region=region))
    secret: str = mesh.regions_api.CreateJoinToken(request, timeout=CHANGE_TIMEOUT_S).secret
    return secret


def acked_routes(mesh: Mesh) -> dict[str, str]:
    """Region → the route table version its Envoy ACKed last, as the control plane recorded
    the ACK; raises on a rejection (a NACK is never a result)."""
    request = api_pb2.ListRegionsRequest()
    listed = mesh.regions_api.ListRegions(request, timeout=CHANGE_TIMEOUT_S).regions
    out = {}
    for region in listed:
        if region.status.nack_error:
            raise RuntimeError(f"region {region.metadata.name}: {region.status.nack_error}")
        out[region.metadata.name] = region.status.acked_versions.get(ROUTES, "")
    return out


@dataclass
class SizeResult:
    deployments: int
    apply_calls_s: float = 0.0
    apply_ready_s: float = 0.0
    fake_envoys: bool = False
    # xDS protocol ("sotw", "delta") -> each change's time until every region ACKed it
    changes_s: dict[str, list[float]] = field(default_factory=dict)
    controlplane_rss: int = 0
    envoy_rss: list[int] = field(default_factory=list)
    list_s: list[float] = field(default_factory=list)
    first_page_s: list[float] = field(default_factory=list)
    translate_full_s: dict[str, float] = field(default_factory=dict)
    translate_one_s: dict[str, float] = field(default_factory=dict)
    xds_bytes: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # largest, all, n
    gateways: dict[str, GatewayAddress] = field(default_factory=dict)
    # The machine's 1-minute load average when the size started and when it ended (the
    # machine may be shared: other processes compete for its cores).
    load: tuple[float, float] = (0.0, 0.0)


def fake_envoy_binary(directory: Path) -> Path:
    """An executable the agents run instead of Envoy: bench/fake_envoy.py (ADS only)."""
    path = directory / "envoy"
    path.write_text(
        f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m bench.fake_envoy "$@"\n'
    )
    path.chmod(0o755)
    return path


def agent_flags(protocol: str, fake: Path | None) -> tuple[str, ...]:
    flags = ("--xds-protocol", protocol)
    return (*flags, "--envoy-binary", str(fake)) if fake is not None else flags


def wait_ready(mesh: Mesh, n: int, page_size: int) -> None:
    def all_ready() -> bool:
        time.sleep(1.0)  # each look lists every deployment: not more than once a second
        items = list_all(mesh, page_size)
        ready = sum(1 for d in items if d.status.phase == DeploymentPhase.READY)
        return len(items) == n and ready == n

    wait_until(all_ready, 3600, f"{n} deployments Ready")


def wait_envoys_configured(mesh: Mesh, n: int) -> None:
    """Every region's (new) Envoy took its clusters (none warming) and its route table: what
    status cannot tell after the agents restarted (the routes ACKed before count for it)."""

    def configured() -> bool:
        time.sleep(1.0)
        for region in REGIONS:
            admin = region_status(mesh, region).admin_address
            stats = envoy_stats(admin, "^(cluster_manager|http.gateway.rds.gateway)")
            if stats.get("cluster_manager.warming_clusters", 1) != 0:
                return False
            if stats.get("cluster_manager.active_clusters", 0) < 4 * n:
                return False
            if stats.get("http.gateway.rds.gateway.update_success", 0) < 1:
                return False
        return True

    wait_until(configured, 3600, "the new Envoys configured")


def wait_gateways_acked(mesh: Mesh) -> None:
    """Every region's (new) gateway connected over ADS and ACKed its config, route table
    included (what the stand-ins can tell: they have no stats)."""

    def acked() -> bool:
        time.sleep(1.0)
        request = api_pb2.ListRegionsRequest()
        listed = mesh.regions_api.ListRegions(request, timeout=CHANGE_TIMEOUT_S).regions
        healthy = {
            r.metadata.name
            for r in listed
            if r.status.gateway_healthy and r.status.acked_versions.get(ROUTES)
        }
        return healthy >= set(REGIONS)

    wait_until(acked, 3600, "the new gateways' configs ACKed")


def envoy_stats(admin: str, pattern: str) -> dict[str, int]:
    query = urllib.parse.urlencode({"filter": pattern})
    with urllib.request.urlopen(f"http://{admin}/stats?{query}", timeout=30) as reply:
        text = reply.read().decode()
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if value.isdigit():
            out[name] = int(value)
    return out


def change_loop(mesh: Mesh, n: int, changes: int, offset: int) -> list[float]:
    """`changes` deployments' request timeouts changed one after the other, each timed from
    the Apply call until every region's Envoy ACKed the route table that carries it."""
    out = []
    step = max(1, n // changes)
    for c in range(changes):
        before = acked_routes(mesh)
        # Never the default (30 s) nor an earlier value: each change must change the route.
        change = deployment((c * step) % n, timeout_s=40.0 + offset + c)
        started = time.perf_counter()
        mesh.apply_resources([change], timeout_s=CHANGE_TIMEOUT_S)
        while True:
            now = acked_routes(mesh)
            if all(now[r] and now[r] != before[r] for r in REGIONS):
                break
            if time.perf_counter() - started > CHANGE_TIMEOUT_S:
                raise TimeoutError(f"change {c}: route tables ACKed {now}, before {before}")
            time.sleep(POLL_S)
        out.append(time.perf_counter() - started)
    return out


def run_size(
    state: Path,
    model: Path,
    n: int,
    batch: int,
    changes: int,
    page_size: int,
    fake: Path | None,
) -> SizeResult:
    """One size; with `fake`, the agents run the ADS-only stand-in instead of Envoy, else real
    Envoys; first over SotW, then (agents restarted) over Delta."""
    result = SizeResult(n, fake_envoys=fake is not None)
    load_before = os.getloadavg()[0]
    facts = {r: {"standby_workers": 0, "flags": agent_flags("sotw", fake)} for r in REGIONS}
    with running_mesh(state, REGIONS, facts) as mesh:
        mesh.apply_resources(base_resources(model), timeout_s=CHANGE_TIMEOUT_S)
        docs = [deployment(i) for i in range(n)]
        started = time.perf_counter()
        for chunk in batches(docs, batch):
            mesh.apply_resources(chunk, timeout_s=CHANGE_TIMEOUT_S)
        result.apply_calls_s = time.perf_counter() - started
        wait_ready(mesh, n, page_size)
        result.apply_ready_s = time.perf_counter() - started
        for region in REGIONS:
            status = region_status(mesh, region)
            result.gateways[region] = GatewayAddress.parse(
                status.gateway_address, status.peer_address
            )
        result.changes_s["sotw"] = change_loop(mesh, n, changes, 0)
        result.controlplane_rss = rss_bytes(mesh.controlplane.pid)
        result.envoy_rss = [
            rss_bytes(pid) for r in REGIONS for pid in envoy_pids(mesh, r, fake is not None)
        ]
        result.list_s = [timed(lambda: list_all(mesh, page_size)) for _ in range(LISTINGS)]
        if page_size:
            first = api_pb2.ListDeploymentsRequest(page_size=page_size)
            result.first_page_s = [
                timed(lambda: mesh.deployments.ListDeployments(first, timeout=600))
                for _ in range(LISTINGS)
            ]
        for region in REGIONS:
            mesh.agents[region].stop(timeout_s=60)
            mesh.start_agent(
                region,
                standby_workers=0,
                flags=agent_flags("delta", fake),
                join_token=join_token(mesh, region),
            )
        wait_until(
            lambda: all(region_status(mesh, r).agent_connected for r in REGIONS),
            3600,
            "every agent to connect again",
        )
        if fake is None:
            wait_envoys_configured(mesh, n)
        else:
            wait_gateways_acked(mesh)
        result.changes_s["delta"] = change_loop(mesh, n, changes, changes)
    translate_offline(state, result)
    result.load = (load_before, os.getloadavg()[0])
    return result


def machine() -> str:
    """`x86_64, 2 cores (AMD EPYC ...), 23 GiB`: what the figures were taken on."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = f" ({line.split(':', 1)[1].strip()})"
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{platform.machine()}, {os.cpu_count()} cores{model}, {memory / 2**30:.0f} GiB"


def network_of(store_file: Path, gateways: dict[str, GatewayAddress]) -> NetworkIR:
    """The network's IR as the control plane builds it, from a copy of its store: every
    deployment cold in every region (nothing was invoked), the activator as last tier, each
    gateway with its mesh certificate."""
    with tempfile.TemporaryDirectory(prefix="meshline-scale-store-") as tmp:
        copy = Path(tmp) / "meshline.db"
        shutil.copy(store_file, copy)
        store = Store.open(copy)
        try:
            snapshot = store.snapshot()
        finally:
            store.close()
    plan = plan_network(snapshot)
    cold = frozenset(
        PlacedTrackKey(d.environment, d.name, t.name, region)
        for d in plan.resolved
        for t in d.tracks
        for region in d.placement.regions
    )
    now = datetime.now(UTC)
    identities = GatewayIdentities(create_ca(now))
    return build_network(
        plan.resolved,
        plan.regions,
        gateways,
        {},
        cold=ColdRegions(cold, activator_endpoint("127.0.0.1", 7100, 7101)),
        tls=identities.tls(gateways, now),
        known_regions=gateways,
    )


def translate_offline(state: Path, result: SizeResult) -> None:
    network = network_of(state / "controlplane" / "meshline.db", result.gateways)
    for gateway in network.gateways:
        started = time.perf_counter()
        resources = translate_gateway(gateway)
        result.translate_full_s[gateway.region] = time.perf_counter() - started
        translator = GatewayTranslator()
        translator.translate(gateway)
        changed = _one_changed(gateway)
        started = time.perf_counter()
        translator.translate(changed)
        result.translate_one_s[gateway.region] = time.perf_counter() - started
        for type_url, by_name in resources.by_type_url().items():
            sizes = [m.ByteSize() for m in by_name.values()]
            kind = type_url.rsplit(".", 1)[-1]
            result.xds_bytes[f"{gateway.region} {kind}"] = (
                max(sizes, default=0),
                sum(sizes),
                len(sizes),
            )


def _one_changed(gateway: GatewayIR) -> GatewayIR:
    """The gateway with its middle deployment's request timeout changed."""
    routes = list(gateway.routes)
    middle = len(routes) // 2
    routes[middle] = replace(routes[middle], request_timeout_s=routes[middle].request_timeout_s + 1)
    return replace(gateway, routes=tuple(routes))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def _meets(value: float, target: float) -> str:
    return "yes" if value <= target else "**no**"


def render(results: list[SizeResult], batch: int, page_size: int) -> str:
    header = "| measurement | " + " | ".join(_column(r) for r in results) + " |"
    rule = "|---|" + "---:|" * len(results)

    def row(label: str, cell: Callable[[SizeResult], str]) -> str:
        return f"| {label} | " + " | ".join(cell(r) for r in results) + " |"

    def change(protocol: str, p: float) -> Callable[[SizeResult], str]:
        def cell(r: SizeResult) -> str:
            values = r.changes_s.get(protocol)
            return _ms(_percentile(values, p)) if values else "-"

        return cell

    rows = [
        row(f"apply, {batch:,} deployments per call (the calls)", lambda r: _ms(r.apply_calls_s)),
        row("apply → every deployment Ready", lambda r: f"{r.apply_ready_s:.1f} s"),
        row(
            "full translate, one gateway from scratch (max of 3)",
            lambda r: _ms(max(r.translate_full_s.values())),
        ),
        row(
            "translate after one deployment changed (kept translator, max of 3)",
            lambda r: _ms(max(r.translate_one_s.values())),
        ),
        row("one change → every region ACKed, SotW, p50", change("sotw", 50)),
        row("one change → every region ACKed, SotW, p99", change("sotw", 99)),
        row("one change → every region ACKed, Delta, p50", change("delta", 50)),
        row("one change → every region ACKed, Delta, p99", change("delta", 99)),
        row("control plane RSS", lambda r: _mib(r.controlplane_rss)),
        row(
            "Envoy RSS (largest of 3)",
            lambda r: "stand-in" if r.fake_envoys else _mib(max(r.envoy_rss, default=0)),
        ),
        row(
            f"`get deployments` (ListDeployments, status, pages of {page_size}), "
            f"median of {LISTINGS}",
            lambda r: _ms(statistics.median(r.list_s)),
        ),
    ]
    rows.append(
        row(
            "machine load (1-minute average) at start → end",
            lambda r: f"{r.load[0]:.1f} → {r.load[1]:.1f}",
        )
    )
    if page_size:
        rows.append(
            row(
                f"`get deployments`, first page of {page_size}",
                lambda r: _ms(statistics.median(r.first_page_s)),
            )
        )
    checks = []
    for r in results:
        where = _column(r)
        if r.deployments >= 10_000:
            full = max(r.translate_full_s.values())
            checks.append(f"translate 10k ≤ 1 s: {_meets(full, TARGETS['translate_10k_s'])}")
            listed = statistics.median(r.list_s)
            checks.append(
                f"get deployments ≤ 0.5 s at 10k: {_meets(listed, TARGETS['list_10k_s'])}"
            )
        target = TARGETS["change_p50_10k_s" if r.deployments >= 10_000 else "change_p50_1k_s"]
        for protocol, values in sorted(r.changes_s.items(), reverse=True):
            if not values or r.deployments < 1_000:
                continue
            p50 = statistics.median(values)
            checks.append(
                f"change ACKed ≤ {target * 1000:.0f} ms p50 ({where}, {PROTOCOLS[protocol]}): "
                f"{_meets(p50, target)}"
            )
    largest = max(results, key=lambda r: r.deployments)
    sizes = "\n".join(
        f"| {name.split(' ', 1)[1]} | {count:,} | {_kib(big)} | {_kib(total)} |"
        for name, (big, total, count) in sorted(largest.xds_bytes.items())
        if name.startswith(REGIONS[0] + " ")
    )
    stand_in = (
        "\n\nAt the sizes marked *stand-in*, three real Envoys do not fit this 23 GiB VM (one "
        "Envoy holds ~1.4 GiB at 1,000 deployments, most of it clusters and their stats): the "
        "agents run `bench/fake_envoy.py` instead, an ADS client that subscribes as Envoy does "
        "and ACKs each response once parsed, over SotW or Delta as its bootstrap says. Those "
        "columns measure the control plane's side only (no Envoy applies anything)."
        if any(r.fake_envoys for r in results)
        else ""
    )
    taken = datetime.now(UTC).strftime("%Y-%m-%d")
    return f"""## Scale: 1,000 and 10,000 deployments x 3 regions

`make bench-scale` (bench/scale.py) on this VM ({machine()}), taken {taken}
(control plane, three agents with their Envoys, and the client on the same cores; the
machine's load average is in the table: other work shared its cores). Every
deployment is serverless (`min_replicas: 0`) and placed in all three regions, so no worker
runs: the figures are the control plane's and the gateways'. A change is one deployment's
request timeout (one route); "ACKed" is the control plane's record of each Envoy's ACK of the
route table that carries it ({_change_counts(results)}). Delta: the same changes after the
agents restarted their Envoys with `--xds-protocol delta`.{stand_in}

{header}
{rule}
{chr(10).join(rows)}

Targets (issue 15): {"; ".join(checks) or "none measured"}.{_not_measured(results)}

Where a change's time goes (py-spy on the control plane during a 1,000 x 3 run, 2026-12-07):
a change is one Apply and then one reconcile pass, and the pass recomputes the whole network
(every deployment's scale, move and load signals, the IR of three gateways, their route tables
assembled again) before it pushes: translation itself keeps every unchanged deployment (the
row "translate after one deployment changed"). Then each gateway gets its whole route table
again, about 12 MB at 1,000 deployments (one RDS resource per listener, so Delta sends it
whole too; Delta was no faster here, its per-resource diff of 8,000 clusters and endpoints
costs more than SotW's version per type). A pass per change (only the deployments a change
touched) and route tables split below one resource per listener are what the targets need;
neither is built yet (docs/architecture.md, Known limits).

What one gateway gets over xDS at {largest.deployments:,} deployments (region
{REGIONS[0]}):

| resource type | resources | largest | all |
|---|---:|---:|---:|
{sizes}
"""


def _not_measured(results: list[SizeResult]) -> str:
    """The sizes issue 15 asks for that this report does not hold, said as such."""
    wanted = [(1_000, True), (10_000, True), (1_000, False)]
    have = {(r.deployments, r.fake_envoys) for r in results}
    missing = [
        f"{n:,} x 3 ({'stand-in Envoys' if fake else 'real Envoys'})"
        for n, fake in wanted
        if (n, fake) not in have
    ]
    return f" Not measured in this run: {', '.join(missing)}." if missing else ""


def _change_counts(results: list[SizeResult]) -> str:
    counts = sorted({len(v) for r in results for v in r.changes_s.values()})
    return " or ".join(str(c) for c in counts) + " changes per column and protocol"


def _column(r: SizeResult) -> str:
    return f"{r.deployments:,} x 3" + (" (stand-in Envoys)" if r.fake_envoys else "")


def _kib(n: int) -> str:
    return f"{n / 1024:,.0f} KiB"


def _result_file(directory: Path, result: SizeResult) -> Path:
    kind = "stand-in" if result.fake_envoys else "envoy"
    return directory / f"n{result.deployments}-{kind}.json"


def save_result(directory: Path, result: SizeResult) -> None:
    """One size's figures as JSON (what the report reads; not the gateways' addresses)."""
    directory.mkdir(parents=True, exist_ok=True)
    data = asdict(result)
    data.pop("gateways")
    _result_file(directory, result).write_text(json.dumps(data, indent=1))


def load_results(directory: Path) -> dict[tuple[int, bool], SizeResult]:
    """Every size saved in `directory`, by (deployments, stand-in Envoys)."""
    out = {}
    for path in sorted(directory.glob("n*.json")) if directory.is_dir() else ():
        data = json.loads(path.read_text())
        data["xds_bytes"] = {k: tuple(v) for k, v in data["xds_bytes"].items()}
        data["load"] = tuple(data["load"])
        result = SizeResult(**data)
        out[(result.deployments, result.fake_envoys)] = result
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--real-sizes", type=int, nargs="*", default=[1000], help="sizes with real Envoys"
    )
    parser.add_argument(
        "--stand-in-sizes",
        type=int,
        nargs="*",
        default=[1000, 10000],
        help="sizes whose agents run bench/fake_envoy.py instead of Envoy (the control "
        "plane's side alone; three real Envoys do not fit 10,000 deployments here)",
    )
    parser.add_argument("--batch", type=int, default=1000, help="deployments per Apply call")
    parser.add_argument("--changes", type=int, default=50, help="changes with stand-ins")
    parser.add_argument(
        "--real-changes", type=int, default=10, help="changes per protocol with real Envoys"
    )
    parser.add_argument(
        "--page-size", type=int, default=500, help="ListDeployments page size (as the CLI)"
    )
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--results",
        type=Path,
        help="a directory that keeps each size's figures once measured: a size found there is "
        "not run again, and the report holds every size there (a long run that stopped "
        "resumes where it stopped; sizes can be run by separate commands)",
    )
    args = parser.parse_args()
    runs = [(n, True) for n in args.stand_in_sizes] + [(n, False) for n in args.real_sizes]
    kept = load_results(args.results) if args.results is not None else {}
    results = list(kept.values())
    with tempfile.TemporaryDirectory(prefix="meshline-bench-scale-") as tmp:
        state = Path(tmp)
        model = build_mlp(state / "tiny.pt")
        fake = fake_envoy_binary(state)
        for n, stand_in in runs:
            if (n, stand_in) in kept:
                continue
            result = run_size(
                state / f"n{n}{'-stand-in' if stand_in else ''}",
                model,
                n,
                args.batch,
                args.changes if stand_in else args.real_changes,
                args.page_size,
                fake if stand_in else None,
            )
            results.append(result)
            if args.results is not None:
                save_result(args.results, result)
            print(render([result], args.batch, args.page_size), flush=True)
    results.sort(key=lambda r: (not r.fake_envoys, r.deployments))
    text = render(results, args.batch, args.page_size)
    print(text)
    if not args.no_write:
        write_section(text, args.report)
        print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
