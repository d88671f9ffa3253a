"""parse_load on Triton's Prometheus text (a real scrape is checked in test_server.py)."""

from __future__ import annotations

import pytest

from workers.triton_worker.metrics import TritonLoad, parse_load

# Trimmed from a tritonserver 2.51 scrape: two versions of one model, and another model.
TEXT = """\
# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="mnist",version="3"} 16
nv_inference_request_success{model="mnist",version="4"} 2
nv_inference_request_success{model="other",version="1"} 99
# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes
# TYPE nv_inference_request_failure counter
nv_inference_request_failure{model="mnist",reason="REJECTED",version="3"} 1
nv_inference_request_failure{model="mnist",reason="BACKEND",version="3"} 0
# HELP nv_inference_count Number of inferences performed (does not include cached requests)
# TYPE nv_inference_count counter
nv_inference_count{model="mnist",version="3"} 20
nv_inference_count{model="mnist",version="4"} 2
# HELP nv_inference_exec_count Number of model executions performed
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{model="mnist",version="3"} 3
nv_inference_exec_count{model="mnist",version="4"} 2
# HELP nv_inference_pending_request_count Instantaneous number of pending requests
# TYPE nv_inference_pending_request_count gauge
nv_inference_pending_request_count{model="mnist",version="3"} 5
# HELP nv_inference_queue_duration_us Cumulative inference queuing duration in microseconds
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{model="mnist",version="3"} 81234
"""


def test_sums_the_models_versions() -> None:
    assert parse_load(TEXT, "mnist") == TritonLoad(
        queued=5, requests=19, inferences=22, executions=5
    )


def test_an_absent_model_reads_zero() -> None:
    assert parse_load(TEXT, "absent") == TritonLoad()
    assert parse_load("", "mnist") == TritonLoad()


def test_garbage_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_load("nv_inference_count{model=mnist} not-a-number\n", "mnist")
