"""Prometheus metrics of inference requests (count, errors, latency, in flight) and of batching.

A registry per worker (not the global one), so tests can build several in one process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


class WorkerMetrics:
    """Request metrics, labelled by protocol (grpc/http) and the served model, and requests per
    principal (the caller the entry gateway verified; bounded, see workers.oip.principals)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model: str, version: str) -> None:
        self.registry = CollectorRegistry()
        self._labels = {"model": model, "version": version}
        names = ["protocol", "model", "version"]
        self._requests = Counter(
            "meshline_worker_requests",
            "Inference requests received.",
            names,
            registry=self.registry,
        )
        self._errors = Counter(
            "meshline_worker_request_errors",
            "Inference requests that failed, by error kind.",
            [*names, "kind"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "meshline_worker_request_duration_seconds",
            "Time from request decoded to response ready.",
            names,
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self._principal_requests = Counter(
            "meshline_worker_principal_requests",
            "Inference requests received, by the caller the entry gateway verified "
            "(x-meshline-principal; 'anonymous' without one, 'other' past the first "
            "distinct principals).",
            ["model", "version", "principal"],
            registry=self.registry,
        )
        self._principal_labels = PrincipalLabels()
        # Header value -> bound child: a dict lookup per request. Only admitted principals are
        # kept, so it stays as small as the label set.
        self._per_principal: dict[str | None, Any] = {}
        self._in_flight_gauge = Gauge(
            "meshline_worker_inflight_requests",
            "Inference requests being handled now.",
            ["model", "version"],
            registry=self.registry,
        )
        self._in_flight = 0
        batch_requests = Histogram(
            "meshline_worker_batch_requests",
            "Requests merged into one forward pass.",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        batch_rows = Histogram(
            "meshline_worker_batch_rows",
            "Rows (first-dimension entries) in one forward pass.",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        queued = Gauge(
            "meshline_worker_queued_requests",
            "Requests waiting for a forward pass now.",
            ["model", "version"],
            registry=self.registry,
        )
        # Bound once: looking a labelled child up costs more than updating it, on every request.
        self._per_protocol = {
            protocol: _ProtocolMetrics(
                requests=self._requests.labels(protocol=protocol, **self._labels),
                latency=self._latency.labels(protocol=protocol, **self._labels),
            )
            for protocol in PROTOCOLS
        }
        self._in_flight_child = self._in_flight_gauge.labels(**self._labels)
        self._batch_requests = batch_requests.labels(**self._labels)
        self._batch_rows = batch_rows.labels(**self._labels)
        self._queued = queued.labels(**self._labels)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def _principal_child(self, principal: str | None) -> Any:
        child = self._per_principal.get(principal)
        if child is None:
            label = self._principal_labels.label(principal)
            child = self._principal_requests.labels(**self._labels, principal=label)
            if label != OTHER:  # past the bound: looked up each time, never remembered
                self._per_principal[principal] = child
        return child

    @contextmanager
    def track(self, protocol: str, principal: str | None = None) -> Iterator[None]:
        """Count one request around its handling; errors are counted by kind and re-raised.

        `principal` is the x-meshline-principal header as received (None when absent).
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
            self._errors.labels(**labels, kind=exc.kind.value).inc()
            raise
        except asyncio.CancelledError:
            self._errors.labels(**labels, kind="cancelled").inc()
            raise
        except Exception:
            self._errors.labels(**labels, kind="internal").inc()
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
