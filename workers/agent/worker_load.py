"""A worker's own load figures, read from its Prometheus metrics.

Envoy's counters say what is in flight towards a worker; only the worker knows how much of
that waits in its queue and how well it batches. The Torch worker and Triton name these
differently, so each runtime has its reader; both give a WorkerLoad.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from workers.agent.launch import RUNTIME_TORCH


@dataclass(frozen=True)
class WorkerLoad:
    queued: int  # requests waiting for a forward pass now
    requests: int  # requests answered since start
    batches: int  # forward passes since start
    # A model in a shared worker: the memory it holds there (its process is measured apart).
    memory_bytes: int = 0


def parse_worker_load(text: str, runtime: str, model: str) -> WorkerLoad:
    """Read one scrape; figures the worker does not export count as 0."""
    if runtime == RUNTIME_TORCH:
        return _torch_load(text, model)
    from workers.triton_worker.metrics import parse_load  # Triton's names, Triton's reader

    load = parse_load(text, model)
    return WorkerLoad(queued=load.queued, requests=load.requests, batches=load.executions)


# The samples a load is made of, and where each goes in [queued, requests, batches, memory].
_LOAD_FIELDS = {
    "meshline_worker_queued_requests": 0,
    "meshline_worker_batch_requests_sum": 1,
    "meshline_worker_batch_requests_count": 2,
    "meshline_worker_model_memory_bytes": 3,
}


def _load_lines(text: str) -> str:
    """Only the sample lines of the four load figures. A shared worker's page has ~70 lines per
    model (latency histograms, counters) and the agent reads it every second: parsing all of it
    for 1,000 models was most of the agent's time. Lines without a TYPE comment parse as
    untyped samples under their full name, which is what the readers match."""
    wanted = tuple(f"{name}{end}" for name in _LOAD_FIELDS for end in ("{", " "))
    return "\n".join(line for line in text.splitlines() if line.startswith(wanted)) + "\n"


def parse_shared_loads(text: str) -> dict[str, WorkerLoad]:
    """One scrape of a shared worker: each model's figures, by the model's label."""
    figures: dict[str, list[float]] = {}  # model → [queued, requests, batches, memory]
    fields = _LOAD_FIELDS
    for family in text_string_to_metric_families(_load_lines(text)):
        for sample in family.samples:
            index = fields.get(sample.name)
            model = sample.labels.get("model")
            if index is None or model is None:
                continue
            figures.setdefault(model, [0.0, 0.0, 0.0, 0.0])[index] += sample.value
    return {
        model: WorkerLoad(int(q), int(r), int(b), memory_bytes=int(m))
        for model, (q, r, b, m) in figures.items()
    }


def _torch_load(text: str, model: str) -> WorkerLoad:
    queued = requests = batches = memory = 0.0
    for family in text_string_to_metric_families(_load_lines(text)):
        for sample in family.samples:
            if sample.labels.get("model", model) != model:
                continue
            if sample.name == "meshline_worker_queued_requests":
                queued += sample.value
            elif sample.name == "meshline_worker_batch_requests_sum":
                requests += sample.value
            elif sample.name == "meshline_worker_batch_requests_count":
                batches += sample.value
            elif sample.name == "meshline_worker_model_memory_bytes":
                memory += sample.value
    return WorkerLoad(
        queued=int(queued), requests=int(requests), batches=int(batches), memory_bytes=int(memory)
    )
