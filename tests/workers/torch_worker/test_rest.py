"""The worker's REST side (/v2 JSON and the binary tensor extension) against a real process."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests.harness.worker import WorkerHandle
from tests.workers.torch_worker.helpers import (
    REGION,
    WORKER_ID,
    HttpReply,
    assert_matches_torch,
    http,
    images,
)

Reference = Callable[[np.ndarray], np.ndarray]


def post_json(worker: WorkerHandle, doc: Any, path: str = "/v2/models/mnist/infer") -> HttpReply:
    return http(
        worker.http_url + path,
        "POST",
        json.dumps(doc).encode(),
        {"Content-Type": "application/json"},
    )


def json_input(x: np.ndarray, name: str = "input", nested: bool = False) -> dict[str, Any]:
    data = x.tolist() if nested else x.ravel().tolist()
    return {"name": name, "datatype": "FP32", "shape": list(x.shape), "data": data}


def output_array(reply: HttpReply, index: int = 0) -> np.ndarray:
    out = reply.json()["outputs"][index]
    return np.array(out["data"], dtype=np.float32).reshape(out["shape"])


def test_health_and_metadata(worker: WorkerHandle) -> None:
    base = worker.http_url
    assert http(base + "/v2/health/live").status == 200
    ready = http(base + "/v2/health/ready")
    assert ready.status == 200 and ready.json() == {"ready": True}
    assert http(base + "/v2/models/mnist/ready").status == 200
    assert http(base + "/v2/models/mnist/versions/1/ready").status == 200
    server = http(base + "/v2").json()
    assert server["name"] == "meshline-torch-worker"
    assert "binary_tensor_data" in server["extensions"]
    expected = {
        "name": "mnist",
        "versions": ["1"],
        "platform": "pytorch_libtorch",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 784]}],
        "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}],
    }
    assert http(base + "/v2/models/mnist").json() == expected
    assert http(base + "/v2/models/mnist/versions/1").json() == expected


@pytest.mark.parametrize("nested", [False, True])
def test_json_infer_matches_local_torch(
    worker: WorkerHandle, reference: Reference, nested: bool
) -> None:
    x = images(2, seed=3)
    reply = post_json(worker, {"id": "r-7", "inputs": [json_input(x, nested=nested)]})
    assert reply.status == 200, reply.body
    doc = reply.json()
    assert (doc["model_name"], doc["model_version"], doc["id"]) == ("mnist", "1", "r-7")
    assert doc["outputs"][0]["datatype"] == "FP32"
    assert_matches_torch(output_array(reply), reference(x))
    assert reply.headers["x-meshline-worker"] == WORKER_ID
    assert reply.headers["x-meshline-region"] == REGION


def test_binary_tensor_extension(worker: WorkerHandle, reference: Reference) -> None:
    x = images(4, seed=5)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": [4, 784],
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "outputs": [{"name": "output", "parameters": {"binary_data": True}}],
        }
    ).encode()
    reply = http(
        worker.http_url + "/v2/models/mnist/versions/1/infer",
        "POST",
        header + x.tobytes(),
        {"Inference-Header-Content-Length": str(len(header))},
    )
    assert reply.status == 200, reply.body
    size = int(reply.headers["Inference-Header-Content-Length"])
    doc = json.loads(reply.body[:size])
    out = doc["outputs"][0]
    assert out["shape"] == [4, 10]
    assert out["parameters"]["binary_data_size"] == 4 * 10 * 4
    assert "data" not in out
    got = np.frombuffer(reply.body[size:], dtype=np.float32).reshape(4, 10)
    assert_matches_torch(got, reference(x))


def test_binary_output_by_request_default(worker: WorkerHandle, reference: Reference) -> None:
    x = images(1, seed=6)
    reply = post_json(
        worker, {"inputs": [json_input(x)], "parameters": {"binary_data_output": True}}
    )
    size = int(reply.headers["Inference-Header-Content-Length"])
    got = np.frombuffer(reply.body[size:], dtype=np.float32).reshape(1, 10)
    assert_matches_torch(got, reference(x))


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        (
            [json_input(np.zeros((1, 783), np.float32))],
            "input 'input': expected shape [-1, 784], got [1, 783]",
        ),
        (
            [{"name": "input", "datatype": "INT64", "shape": [1, 784], "data": [0] * 784}],
            "input 'input': expected datatype FP32, got INT64",
        ),
        ([json_input(images(1), name="pixels")], "unexpected input 'pixels'"),
        ([], "missing input 'input'"),
        (
            [{"name": "input", "datatype": "FP32", "shape": [1, 784], "data": [0.5] * 10}],
            "input 'input': shape [1, 784] needs 784 values, got 10",
        ),
        (
            [{"name": "input", "datatype": "FP32", "shape": [1, 784], "data": ["a"] * 784}],
            "input 'input': data holds non-numeric values",
        ),
        ([{"name": "input", "datatype": "FP32", "shape": [1, 784]}], "input 'input': no data"),
        (
            [{"name": "input", "datatype": "FP32", "shape": [1, -5], "data": []}],
            "input 'input': shape must be a list of non-negative integers",
        ),
    ],
)
def test_bad_input_is_400_naming_the_tensor(
    worker: WorkerHandle, inputs: list[dict[str, Any]], expected: str
) -> None:
    reply = post_json(worker, {"inputs": inputs})
    assert reply.status == 400
    assert expected in reply.json()["error"]
    assert reply.headers["x-meshline-worker"] == WORKER_ID


def test_malformed_bodies_are_400(worker: WorkerHandle) -> None:
    url = worker.http_url + "/v2/models/mnist/infer"
    reply = http(url, "POST", b"{not json")
    assert reply.status == 400 and "not valid JSON" in reply.json()["error"]
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": [1, 784],
                    "parameters": {"binary_data_size": 3136},
                }
            ]
        }
    ).encode()
    short = http(
        url, "POST", header + b"\0" * 10, {"Inference-Header-Content-Length": str(len(header))}
    )
    assert short.status == 400 and "input 'input'" in short.json()["error"]
    unknown_output = post_json(
        worker, {"inputs": [json_input(images(1))], "outputs": [{"name": "logits"}]}
    )
    assert unknown_output.status == 400 and "'logits'" in unknown_output.json()["error"]


def test_unknown_model_or_version_is_404(worker: WorkerHandle) -> None:
    doc = {"inputs": [json_input(images(1))]}
    reply = post_json(worker, doc, "/v2/models/resnet/infer")
    assert reply.status == 404 and "'resnet'" in reply.json()["error"]
    reply = post_json(worker, doc, "/v2/models/mnist/versions/9/infer")
    assert reply.status == 404 and "'9'" in reply.json()["error"]
    assert http(worker.http_url + "/v2/models/resnet").status == 404
    assert http(worker.http_url + "/v2/models/resnet/ready").status == 404
    assert http(worker.http_url + "/v2/nothing/here").status == 404


def test_bad_request_does_not_break_the_next(worker: WorkerHandle, reference: Reference) -> None:
    for _ in range(2):
        assert post_json(worker, {"inputs": [json_input(images(1)[:, :5])]}).status == 400
        x = images(1, seed=8)
        reply = post_json(worker, {"inputs": [json_input(x)]})
        assert reply.status == 200
        assert_matches_torch(output_array(reply), reference(x))


def test_metrics_count_requests_and_errors(worker: WorkerHandle) -> None:
    post_json(worker, {"inputs": [json_input(images(1))]})
    post_json(worker, {"inputs": []})
    text = http(worker.http_url + "/metrics").body.decode()
    assert 'meshline_worker_requests_total{model="mnist",protocol="http",version="1"}' in text
    assert 'kind="invalid_argument"' in text
    assert "meshline_worker_request_duration_seconds_bucket" in text
    assert 'meshline_worker_inflight_requests{model="mnist",version="1"} 0.0' in text
