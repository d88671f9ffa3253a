"""The agent's reading of a worker's own metrics, on the text the real exporters write."""

from __future__ import annotations

from workers.agent.worker_load import WorkerLoad, parse_worker_load
from workers.torch_worker.metrics import WorkerMetrics

TRITON_TEXT = """\
# HELP nv_inference_request_success Number of successful inference requests
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="d",version="1"} 12
nv_inference_request_success{model="other",version="1"} 99
# HELP nv_inference_request_failure Number of failed inference requests
# TYPE nv_inference_request_failure counter
nv_inference_request_failure{model="d",reason="BACKEND",version="1"} 1
# HELP nv_inference_count Number of inferences performed
# TYPE nv_inference_count counter
nv_inference_count{model="d",version="1"} 30
# HELP nv_inference_exec_count Number of model executions performed
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{model="d",version="1"} 4
# HELP nv_inference_pending_request_count Instantaneous number of pending requests
# TYPE nv_inference_pending_request_count gauge
nv_inference_pending_request_count{model="d",version="1"} 2
"""


def test_torch_worker_metrics_give_queue_requests_and_passes() -> None:
    metrics = WorkerMetrics("d", "v1")
    metrics.observe_batch(requests=3, rows=5)
    metrics.observe_batch(requests=1, rows=1)
    metrics.set_queued(4)
    load = parse_worker_load(metrics.render().decode(), "torch", "d")
    assert load == WorkerLoad(queued=4, requests=4, batches=2)


def test_another_models_lines_are_not_counted() -> None:
    metrics = WorkerMetrics("other", "v1")
    metrics.observe_batch(requests=3, rows=3)
    assert parse_worker_load(metrics.render().decode(), "torch", "d") == WorkerLoad(0, 0, 0)


def test_triton_metrics_give_the_same_figures() -> None:
    load = parse_worker_load(TRITON_TEXT, "triton", "d")
    assert load == WorkerLoad(queued=2, requests=13, batches=4)
    assert parse_worker_load(TRITON_TEXT, "external", "d") == load


def test_a_shared_workers_page_gives_each_models_figures() -> None:
    """The real shared worker's page, with the histograms and counters the agent skips: each
    model's four figures, nothing of one model counted for another."""
    from workers.agent.worker_load import parse_shared_loads
    from workers.torch_worker.metrics import SharedMetrics

    metrics = SharedMetrics()
    a, b = metrics.bind("a", "v1"), metrics.bind("b", "v1")
    for model in (a, b):
        with model.track("grpc"):
            pass
    a.observe_batch(requests=3, rows=5)
    a.observe_batch(requests=1, rows=1)
    b.observe_batch(requests=2, rows=2)
    metrics.set_queued("a", 4)
    metrics.set_memory("b", "v1", 1 << 20)
    text = metrics.render().decode()
    assert "_bucket{" in text  # the page carries what the reader must skip
    loads = parse_shared_loads(text)
    assert loads["a"] == WorkerLoad(queued=4, requests=4, batches=2)
    assert loads["b"] == WorkerLoad(queued=0, requests=2, batches=1, memory_bytes=1 << 20)
