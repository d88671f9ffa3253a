"""Read one model's load out of Triton's Prometheus text (what the agent scrapes from
--metrics-port /metrics).

Counters are summed over the model's versions (and over failure reasons), so a worker serving one
version reads the same as Triton's own per-version lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

QUEUED = "nv_inference_pending_request_count"
SUCCESS = "nv_inference_request_success"
FAILURE = "nv_inference_request_failure"
INFERENCES = "nv_inference_count"
EXECUTIONS = "nv_inference_exec_count"


@dataclass(frozen=True)
class TritonLoad:
    """One model's counters at one scrape.

    queued: requests waiting in Triton's scheduler queue right now (a gauge).
    requests: requests Triton has answered, successes and failures (Triton counts a request whose
        Python-backend response carries an error as a success).
    inferences: batch items inferred (a request of shape [4, ...] counts 4).
    executions: model executions (forward passes); inferences / executions is the mean batch size.
    """

    queued: int = 0
    requests: int = 0
    inferences: int = 0
    executions: int = 0


def parse_load(text: str, model: str) -> TritonLoad:
    """TritonLoad of `model`; all zeros when the text has no lines for it (not loaded yet).

    ValueError if `text` is not Prometheus exposition text.
    """
    sums = dict.fromkeys((QUEUED, SUCCESS, FAILURE, INFERENCES, EXECUTIONS), 0.0)
    for family in text_string_to_metric_families(text):
        if family.name not in sums:
            continue
        # prometheus_client names a counter's samples <family>_total; Triton's lines have no suffix.
        names = (family.name, f"{family.name}_total")
        for sample in family.samples:
            if sample.name in names and sample.labels.get("model") == model:
                sums[family.name] += sample.value
    return TritonLoad(
        queued=int(sums[QUEUED]),
        requests=int(sums[SUCCESS] + sums[FAILURE]),
        inferences=int(sums[INFERENCES]),
        executions=int(sums[EXECUTIONS]),
    )
