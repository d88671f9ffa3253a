"""Per-cluster traffic from the region's Envoy (admin `/stats`, JSON): requests, errors and the
latency histogram of every cluster clients use. Cumulative since Envoy started; the control
plane takes differences over a canary step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from meshline.v1 import agent_pb2

LOCAL_MARK = "~local"
# Only the figures analysis reads: keeps the admin answer small.
STATS_FILTER = (
    r"^cluster\.[^~]*\.(grpc|http)\."
    r"(upstream_rq_time|upstream_rq_5xx|upstream_rq_completed|grpc\..*\.(total|failure))$"
)
STATS_QUERY = {
    "format": "json",
    "usedonly": "",
    "histogram_buckets": "cumulative",
    "filter": STATS_FILTER,
}
_CLUSTER = re.compile(r"^cluster\.(?P<cluster>.+?\.(?:grpc|http))\.(?P<stat>.+)$")
HEALTH_SERVICE = "grpc.health.v1.Health"


def parse_traffic(body: Mapping[str, Any]) -> dict[str, agent_pb2.ClusterTraffic]:
    """`/stats?format=json&histogram_buckets=cumulative` → cluster → its traffic."""
    out: dict[str, agent_pb2.ClusterTraffic] = {}
    grpc_totals: dict[str, int] = {}
    grpc_failures: dict[str, int] = {}
    http_totals: dict[str, int] = {}
    http_errors: dict[str, int] = {}
    for entry in body.get("stats", ()):
        if "histograms" in entry:
            for histogram in _histograms(entry["histograms"]):
                match = _CLUSTER.match(str(histogram.get("name", "")))
                if match is None or match["stat"] != "upstream_rq_time":
                    continue
                traffic = out.setdefault(match["cluster"], _new(match["cluster"]))
                traffic.latency.extend(
                    agent_pb2.LatencyBucket(
                        upper_ms=float(b["upper_bound"]), count=int(b.get("cumulative", 0))
                    )
                    for b in histogram.get("buckets", ())
                )
            continue
        match = _CLUSTER.match(str(entry.get("name", "")))
        if match is None or LOCAL_MARK in match["cluster"]:
            continue
        cluster, stat, value = match["cluster"], match["stat"], int(entry.get("value", 0))
        if stat.startswith("grpc.") and HEALTH_SERVICE not in stat:
            if stat.endswith(".total"):
                grpc_totals[cluster] = grpc_totals.get(cluster, 0) + value
            elif stat.endswith(".failure"):
                grpc_failures[cluster] = grpc_failures.get(cluster, 0) + value
        elif stat == "upstream_rq_completed":
            http_totals[cluster] = value
        elif stat == "upstream_rq_5xx":
            http_errors[cluster] = value
    for cluster in set(grpc_totals) | set(http_totals):
        traffic = out.setdefault(cluster, _new(cluster))
        if cluster.endswith(".grpc"):
            # A gRPC error is an HTTP 200 with grpc-status in trailers: the filter's counts.
            traffic.requests = grpc_totals.get(cluster, http_totals.get(cluster, 0))
            traffic.errors = grpc_failures.get(cluster, http_errors.get(cluster, 0))
        else:
            traffic.requests = http_totals.get(cluster, 0)
            traffic.errors = http_errors.get(cluster, 0)
    return {c: t for c, t in out.items() if LOCAL_MARK not in c and (t.requests or t.latency)}


def _histograms(value: Any) -> list[Mapping[str, Any]]:
    """Bucket form only (a mapping is the quantile form, asked for without buckets)."""
    return value if isinstance(value, list) else []


def _new(cluster: str) -> agent_pb2.ClusterTraffic:
    return agent_pb2.ClusterTraffic(cluster=cluster)
