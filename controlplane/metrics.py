"""The control plane's Prometheus page: what scale-to-zero costs and what the autoscaler does.

Read at scrape time from the reconciler's last decisions, the cold-start ledger and the
activator, so the page never disagrees with `meshline get deployments`.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from controlplane.activator import Activator
from controlplane.autoscale import ColdStart
from controlplane.reconcile import Reconciler

LABELS = ("deployment", "environment", "region")
COLD_START_BUCKETS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)
REBUILD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _ScaleCollector(Collector):
    def __init__(self, reconciler: Reconciler, activator: Activator) -> None:
        self._reconciler = reconciler
        self._activator = activator

    def collect(self) -> Iterator[Metric]:
        desired = GaugeMetricFamily(
            "meshline_desired_replicas",
            "Workers the autoscaler wants per deployment track and region",
            labels=[*LABELS, "track"],
        )
        cold = GaugeMetricFamily(
            "meshline_scaled_to_zero",
            "1 while a region holds no worker of the track on purpose (or is waking from zero)",
            labels=[*LABELS, "track"],
        )
        for (environment, deployment, track, region), scale in sorted(
            self._reconciler.state.scales.items()
        ):
            labels = [deployment, environment, region, track]
            desired.add_metric(labels, scale.desired)
            cold.add_metric(labels, 1.0 if scale.cold else 0.0)
        held = GaugeMetricFamily(
            "meshline_activator_held_requests",
            "Requests the activator holds now, waiting for a cold start",
            labels=[*LABELS, "track"],
        )
        for (environment, deployment, track, region), count in sorted(
            self._activator.held().items()
        ):
            held.add_metric([deployment, environment, region, track], count)
        starts = CounterMetricFamily(
            "meshline_cold_starts",
            "Cold starts: zero workers to the first one the region's gateway routes to",
            labels=list(LABELS),
        )
        for (environment, deployment, region), totals in sorted(
            self._reconciler.autoscaler.ledger.totals.items()
        ):
            starts.add_metric([deployment, environment, region], totals.count)
        yield from (desired, cold, held, starts)


class MetricsServer:
    def __init__(self, reconciler: Reconciler, activator: Activator) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_ScaleCollector(reconciler, activator))
        self._durations = Histogram(
            "meshline_cold_start_seconds",
            "Duration of each cold start, from the wake-up decision to a routable worker",
            LABELS,
            buckets=COLD_START_BUCKETS,
            registry=self.registry,
        )
        reconciler.autoscaler.ledger.listeners.append(self._observe)
        # How long one pass over the network takes: a cold start waits for several in a row,
        # so this is the first figure to read when cold starts slow down as deployments grow.
        rebuilds = Histogram(
            "meshline_controlplane_rebuild_seconds",
            "Duration of each reconcile pass (store, policies, IR, translate, push)",
            buckets=REBUILD_BUCKETS,
            registry=self.registry,
        )
        reconciler.rebuild_listeners.append(rebuilds.observe)
        # What woke the passes: under steady traffic agent reports dominate (each one is a
        # whole pass, see docs/architecture.md, Known limits).
        triggers = Counter(
            "meshline_controlplane_rebuild_triggers",
            "What asked for a reconcile pass (several in one debounce window make one pass)",
            ["source"],
            registry=self.registry,
        )
        reconciler.trigger_listeners.append(lambda source: triggers.labels(source).inc())
        self._runner: web.AppRunner | None = None
        self.address = ""

    def _observe(self, cold_start: ColdStart) -> None:
        self._durations.labels(
            cold_start.deployment, cold_start.environment, cold_start.region
        ).observe(cold_start.seconds)

    def page(self) -> bytes:
        return generate_latest(self.registry)

    async def start(self, listen: str) -> None:
        host, port = listen.rsplit(":", 1)
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host.strip("[]"), int(port))
        await site.start()
        server = site._server  # port 0 picks one: read back what was bound
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        self.address = f"{host}:{bound}"

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.page(), content_type="text/plain", charset="utf-8")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
