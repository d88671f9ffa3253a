"""Prometheus metrics of inference requests (count, errors, latency, in flight) and of batching.

A registry per worker (not the global one), so tests can build several in one process. Every
series is labelled with its model and version: a worker serving one model (WorkerMetrics) and a
shared worker serving many (SharedMetrics) write the same families, so readers (the agent's
load figures) tell models apart by label either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from workers.oip.errors import InferenceError
from workers.oip.principals import OTHER, PrincipalLabels

# Requests / rows per forward pass: powers of two, as batch sizes usually are.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


PROTOCOLS = ("grpc", "http")


@dataclass(frozen=True)
class _ProtocolMetrics:
    requests: Any
    latency: Any


class MetricFamilies:
    """Every metric family of one worker, in its own registry (not the global one, so tests
    can build several in one process); children are bound per model by ModelMetrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        names = ["protocol", "model", "version"]
        self.requests = Counter(
            "meshline_worker_requests",
            "Inference requests received.",
            names,
            registry=self.registry,
        )
        self.errors = Counter(
            "meshline_worker_request_errors",
            "Inference requests that failed, by error kind.",
            [*names, "kind"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "meshline_worker_request_duration_seconds",
            "Time from request decoded to response ready.",
            names,
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.principal_requests = Counter(
            "meshline_worker_principal_requests",
            "Inference requests received, by the caller the entry gateway verified "
            "(x-meshline-principal; 'anonymous' without one, 'other' past the first "
            "distinct principals).",
            ["model", "version", "principal"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "meshline_worker_inflight_requests",
            "Inference requests being handled now.",
            ["model", "version"],
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "meshline_worker_batch_requests",
            "Requests merged into one forward pass.",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "meshline_worker_batch_rows",
            "Rows (first-dimension entries) in one forward pass.",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queued = Gauge(
            "meshline_worker_queued_requests",
            "Requests waiting for a forward pass now.",
            ["model", "version"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ModelMetrics:
    """Request metrics of one model, labelled by protocol (grpc/http) and the model, and
    requests per principal (the caller the entry gateway verified; bounded, see
    workers.oip.principals)."""

    def __init__(self, families: MetricFamilies, model: str, version: str) -> None:
        self._families = families
        self._labels = {"model": model, "version": version}
        self._principal_labels = PrincipalLabels()
        # Header value -> bound child: a dict lookup per request. Only admitted principals are
        # kept, so it stays as small as the label set.
        self._per_principal: dict[str | None, Any] = {}
        self._in_flight = 0
        # Bound once: looking a labelled child up costs more than updating it, on every request.
        self._per_protocol = {
            protocol: _ProtocolMetrics(
                requests=families.requests.labels(protocol=protocol, **self._labels),
                latency=families.latency.labels(protocol=protocol, **self._labels),
            )
            for protocol in PROTOCOLS
        }
        self._in_flight_child = families.in_flight.labels(**self._labels)
        self._batch_requests = families.batch_requests.labels(**self._labels)
        self._batch_rows = families.batch_rows.labels(**self._labels)
        self._queued = families.queued.labels(**self._labels)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def _principal_child(self, principal: str | None) -> Any:
        child = self._per_principal.get(principal)
        if child is None:
            label = self._principal_labels.label(principal)
            child = self._families.principal_requests.labels(**self._labels, principal=label)
            if label != OTHER:  # past the bound: looked up each time, never remembered
                self._per_principal[principal] = child
        return child

    @contextmanager
    def track(self, protocol: str, principal: str | None = None, model: str = "") -> Iterator[None]:
        """Count one request around its handling; errors are counted by kind and re-raised.

        `principal` is the x-meshline-principal header as received (None when absent); `model`
        (the name the request gives) is not looked at: these metrics are bound to one model.
        """
        labels = {"protocol": protocol, **self._labels}
        bound = self._per_protocol[protocol]
        bound.requests.inc()
        self._principal_child(principal).inc()
        self._in_flight += 1
        self._in_flight_child.inc()
        start = time.perf_counter()
        try:
            yield
        except InferenceError as exc:
            self._families.errors.labels(**labels, kind=exc.kind.value).inc()
            raise
        except asyncio.CancelledError:
            self._families.errors.labels(**labels, kind="cancelled").inc()
            raise
        except Exception:
            self._families.errors.labels(**labels, kind="internal").inc()
            raise
        finally:
            bound.latency.observe(time.perf_counter() - start)
            self._in_flight -= 1
            self._in_flight_child.dec()

    def observe_batch(self, requests: int, rows: int) -> None:
        """One forward pass ran `requests` requests with `rows` rows in all."""
        self._batch_requests.observe(requests)
        self._batch_rows.observe(rows)

    def set_queued(self, count: int) -> None:
        self._queued.set(count)


class WorkerMetrics(ModelMetrics):
    """The metrics of a worker serving one model: its families, bound to that model."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model: str, version: str) -> None:
        self.families = MetricFamilies()
        self.registry = self.families.registry
        super().__init__(self.families, model, version)

    def render(self) -> bytes:
        return self.families.render()


# The label of requests a shared worker counts for a model it has never been told about (the
# name is the caller's text: it must not make a label of its own).
UNKNOWN_MODEL = "(unknown)"


class SharedMetrics:
    """The metrics of a shared worker: the same families, bound per model it was told about
    (children stay after an unload: counters never go back), plus each loaded model's memory."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.families = MetricFamilies()
        self.registry = self.families.registry
        self._models: dict[str, ModelMetrics] = {}
        self._versions: dict[str, str] = {}
        self._unknown = ModelMetrics(self.families, UNKNOWN_MODEL, "")
        self._memory = Gauge(
            "meshline_worker_model_memory_bytes",
            "Memory a loaded model holds: its declared memory_bytes, else what the process "
            "grew by when it loaded (at least its file's size).",
            ["model", "version"],
            registry=self.registry,
        )
        self._budget = Gauge(
            "meshline_worker_memory_budget_bytes",
            "The models' memory budget of this worker (0: none).",
            registry=self.registry,
        )

    def bind(self, model: str, version: str) -> ModelMetrics:
        """The metrics of `model` at `version` (the same object while the version stays)."""
        if self._versions.get(model) != version:
            self._models[model] = ModelMetrics(self.families, model, version)
            self._versions[model] = version
        return self._models[model]

    def track(
        self, protocol: str, principal: str | None = None, model: str = ""
    ) -> AbstractContextManager[None]:
        """Count one request under the model it names (see ModelMetrics.track)."""
        return self._models.get(model, self._unknown).track(protocol, principal)

    def set_queued(self, model: str, count: int) -> None:
        """Requests waiting for `model` (its load) now, under its current version."""
        bound = self._models.get(model)
        if bound is not None:
            bound.set_queued(count)

    def set_memory(self, model: str, version: str, amount_bytes: int) -> None:
        self._memory.labels(model=model, version=version).set(amount_bytes)

    def forget_memory(self, model: str, version: str) -> None:
        """The model no longer holds memory: its gauge goes (not to 0: it is not loaded)."""
        with contextlib.suppress(KeyError):
            self._memory.remove(model, version)

    def set_budget(self, amount_bytes: int) -> None:
        self._budget.set(amount_bytes)

    def render(self) -> bytes:
        return self.families.render()
