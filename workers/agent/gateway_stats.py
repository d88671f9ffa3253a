"""Per-cluster traffic from the region's Envoy (admin `/stats`, JSON): requests, errors and the
latency histogram of the clusters asked for. Cumulative since Envoy started; the control plane
takes differences over a canary step.

A stat reads `cluster.<cluster name>.<stat>`, and a cluster name may hold dots: the name is
found among the clusters Envoy listed (`/clusters`), never cut out of the stat by its shape.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from meshline.v1 import agent_pb2

# Only the figures analysis reads: keeps the admin answer small.
STATS_FILTER = (
    r"^cluster\..+\."
    r"(upstream_rq_time|upstream_rq_5xx|upstream_rq_completed|grpc\..*\.(total|failure))$"
)
STATS_QUERY = {
    "format": "json",
    "usedonly": "",
    "histogram_buckets": "cumulative",
    "filter": STATS_FILTER,
}
CLUSTER_PREFIX = "cluster."
HEALTH_SERVICE = "grpc.health.v1.Health"
_PLAIN_STATS = frozenset({"upstream_rq_time", "upstream_rq_5xx", "upstream_rq_completed"})


def split_stat(name: str, clusters: Collection[str]) -> tuple[str, str] | None:
    """`cluster.<one of clusters>.<stat>` → (cluster, stat); None for anything else. The
    longest listed cluster whose remainder is a stat read here wins."""
    if not name.startswith(CLUSTER_PREFIX):
        return None
    rest = name[len(CLUSTER_PREFIX) :]
    end = len(rest)
    while (end := rest.rfind(".", 0, end)) > 0:
        cluster, stat = rest[:end], rest[end + 1 :]
        if cluster in clusters and _is_read(stat):
            return cluster, stat
    return None


def _is_read(stat: str) -> bool:
    if stat in _PLAIN_STATS:
        return True
    return stat.startswith("grpc.") and stat.endswith((".total", ".failure"))


def parse_traffic(
    body: Mapping[str, Any], clusters: Collection[str]
) -> dict[str, agent_pb2.ClusterTraffic]:
    """`/stats?format=json&histogram_buckets=cumulative` → cluster → its traffic, for the
    `clusters` given (others are left out)."""
    out: dict[str, agent_pb2.ClusterTraffic] = {}
    grpc_totals: dict[str, int] = {}
    grpc_failures: dict[str, int] = {}
    http_totals: dict[str, int] = {}
    http_errors: dict[str, int] = {}
    for entry in body.get("stats", ()):
        if "histograms" in entry:
            for histogram in _histograms(entry["histograms"]):
                split = split_stat(str(histogram.get("name", "")), clusters)
                if split is None or split[1] != "upstream_rq_time":
                    continue
                traffic = out.setdefault(split[0], _new(split[0]))
                traffic.latency.extend(
                    agent_pb2.LatencyBucket(
                        upper_ms=float(b["upper_bound"]), count=int(b.get("cumulative", 0))
                    )
                    for b in histogram.get("buckets", ())
                )
            continue
        split = split_stat(str(entry.get("name", "")), clusters)
        if split is None:
            continue
        (cluster, stat), value = split, int(entry.get("value", 0))
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
        if cluster in grpc_totals:
            # A gRPC cluster (only gRPC requests, routed by content type, reach the gRPC
            # stats filter's counts): a gRPC error is an HTTP 200 with grpc-status in
            # trailers, so the filter's counts are the requests and errors.
            traffic.requests = grpc_totals[cluster]
            traffic.errors = grpc_failures.get(cluster, http_errors.get(cluster, 0))
        else:
            traffic.requests = http_totals.get(cluster, 0)
            traffic.errors = http_errors.get(cluster, 0)
    return {c: t for c, t in out.items() if t.requests or t.latency}


def _histograms(value: Any) -> list[Mapping[str, Any]]:
    """Bucket form only (a mapping is the quantile form, asked for without buckets)."""
    return value if isinstance(value, list) else []


def _new(cluster: str) -> agent_pb2.ClusterTraffic:
    return agent_pb2.ClusterTraffic(cluster=cluster)
