"""The worker's gRPC side against a real worker process, with our generated stubs."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshline.inference import grpc_service_pb2 as pb
from meshline.inference import grpc_service_pb2_grpc as pb_grpc
from tests.harness.worker import WorkerHandle
from tests.workers.torch_worker.helpers import REGION, WORKER_ID, assert_matches_torch, images

Stub = pb_grpc.GRPCInferenceServiceStub


def raw_request(x: np.ndarray, model: str = "mnist", **kw: object) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=model, **kw)  # type: ignore[arg-type]
    request.inputs.add(name="input", datatype="FP32", shape=list(x.shape))
    request.raw_input_contents.append(x.tobytes())
    return request


def typed_request(x: np.ndarray) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="mnist")
    tensor = request.inputs.add(name="input", datatype="FP32", shape=list(x.shape))
    tensor.contents.fp32_contents.extend(x.ravel().tolist())
    return request


def raw_output(response: pb.ModelInferResponse, index: int = 0) -> np.ndarray:
    tensor = response.outputs[index]
    return np.frombuffer(response.raw_output_contents[index], dtype=np.float32).reshape(
        tuple(tensor.shape)
    )


def infer_error(stub: Stub, request: pb.ModelInferRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(request, timeout=30)
    return info.value


def test_server_and_model_status(stub: Stub) -> None:
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name="mnist")).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name="mnist", version="1")).ready
    server = stub.ServerMetadata(pb.ServerMetadataRequest())
    assert server.name == "meshline-torch-worker"
    assert "binary_tensor_data" in server.extensions


def test_model_metadata(stub: Stub) -> None:
    meta = stub.ModelMetadata(pb.ModelMetadataRequest(name="mnist"))
    assert meta.name == "mnist"
    assert list(meta.versions) == ["1"]
    assert meta.platform == "pytorch_libtorch"
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
        ("input", "FP32", [-1, 784])
    ]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.outputs] == [
        ("output", "FP32", [-1, 10])
    ]


def test_health_check_serving(worker: WorkerHandle) -> None:
    with grpc.insecure_channel(worker.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "mnist"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_raw_infer_matches_local_torch(
    stub: Stub, reference: Callable[[np.ndarray], np.ndarray]
) -> None:
    x = images(1, seed=1)
    response, call = stub.ModelInfer.with_call(raw_request(x, id="req-1"), timeout=30)
    assert response.model_name == "mnist"
    assert response.model_version == "1"
    assert response.id == "req-1"
    assert [o.name for o in response.outputs] == ["output"]
    assert response.outputs[0].datatype == "FP32"
    assert not response.outputs[0].HasField("contents")
    assert_matches_torch(raw_output(response), reference(x))
    trailers = dict(call.trailing_metadata())
    assert trailers["x-meshline-worker"] == WORKER_ID
    assert trailers["x-meshline-region"] == REGION


def test_typed_infer_matches_local_torch(
    stub: Stub, reference: Callable[[np.ndarray], np.ndarray]
) -> None:
    x = images(2, seed=2)
    response = stub.ModelInfer(typed_request(x), timeout=30)
    assert len(response.raw_output_contents) == 0
    out = response.outputs[0]
    got = np.array(out.contents.fp32_contents, dtype=np.float32).reshape(tuple(out.shape))
    assert_matches_torch(got, reference(x))
    # Same numbers whichever way the tensor travelled.
    np.testing.assert_array_equal(got, raw_output(stub.ModelInfer(raw_request(x), timeout=30)))


def test_batch_of_four(stub: Stub, reference: Callable[[np.ndarray], np.ndarray]) -> None:
    x = images(4, seed=4)
    response = stub.ModelInfer(raw_request(x), timeout=30)
    assert list(response.outputs[0].shape) == [4, 10]
    assert_matches_torch(raw_output(response), reference(x))


def test_versioned_request_and_requested_output(stub: Stub) -> None:
    x = images(1)
    request = raw_request(x, model_version="1")
    request.outputs.add(name="output")
    response = stub.ModelInfer(request, timeout=30)
    assert [o.name for o in response.outputs] == ["output"]


def _wrong_shape() -> pb.ModelInferRequest:
    return raw_request(np.zeros((1, 783), dtype=np.float32))


def _wrong_datatype() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="mnist")
    request.inputs.add(name="input", datatype="FP64", shape=[1, 784])
    request.raw_input_contents.append(np.zeros((1, 784), dtype=np.float64).tobytes())
    return request


def _unknown_input() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="mnist")
    request.inputs.add(name="pixels", datatype="FP32", shape=[1, 784])
    request.raw_input_contents.append(images(1).tobytes())
    return request


def _missing_input() -> pb.ModelInferRequest:
    return pb.ModelInferRequest(model_name="mnist")


def _short_raw_bytes() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="mnist")
    request.inputs.add(name="input", datatype="FP32", shape=[1, 784])
    request.raw_input_contents.append(b"\0" * 100)
    return request


def _typed_in_wrong_field() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="mnist")
    tensor = request.inputs.add(name="input", datatype="FP32", shape=[1, 784])
    tensor.contents.int_contents.extend([0] * 784)
    return request


def _unknown_output() -> pb.ModelInferRequest:
    request = raw_request(images(1))
    request.outputs.add(name="logits")
    return request


def _bytes_datatype() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="mnist")
    tensor = request.inputs.add(name="input", datatype="BYTES", shape=[1])
    tensor.contents.bytes_contents.append(b"hello")
    return request


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_wrong_shape, "input 'input': expected shape [-1, 784], got [1, 783]"),
        (_wrong_datatype, "input 'input': expected datatype FP32, got FP64"),
        (_unknown_input, "unexpected input 'pixels'"),
        (_missing_input, "missing input 'input'"),
        (_short_raw_bytes, "input 'input': shape [1, 784] of FP32 needs 3136 bytes, got 100"),
        (_typed_in_wrong_field, "input 'input': FP32 data must be in contents.fp32_contents"),
        (_unknown_output, "unknown output 'logits'"),
        (_bytes_datatype, "input 'input': datatype BYTES is not supported"),
    ],
)
def test_bad_input_is_invalid_argument_naming_the_tensor(
    stub: Stub, make: Callable[[], pb.ModelInferRequest], expected: str
) -> None:
    error = infer_error(stub, make())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in error.details()
    assert dict(error.trailing_metadata())["x-meshline-worker"] == WORKER_ID


def test_unknown_model_and_version_are_not_found(stub: Stub) -> None:
    error = infer_error(stub, raw_request(images(1), model="resnet"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "'resnet'" in error.details()
    error = infer_error(stub, raw_request(images(1), model_version="7"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "'7'" in error.details()
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelMetadata(pb.ModelMetadataRequest(name="resnet"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelReady(pb.ModelReadyRequest(name="resnet"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_bad_request_does_not_break_the_next(
    stub: Stub, reference: Callable[[np.ndarray], np.ndarray]
) -> None:
    for _ in range(2):
        infer_error(stub, _wrong_shape())
        x = images(1, seed=9)
        assert_matches_torch(raw_output(stub.ModelInfer(raw_request(x), timeout=30)), reference(x))
