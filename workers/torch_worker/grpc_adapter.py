"""gRPC adapter: `inference.GRPCInferenceService` on grpc.aio, a thin layer over one model's
DataPlane or a shared worker's ModelRepository (workers/torch_worker/backend.py).

Replies use `raw_output_contents` when the request used `raw_input_contents` (what tritonclient
sends and expects) and typed `contents` otherwise. Every reply, error or not, carries the worker's
identity as trailing metadata.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from meshline.inference import grpc_service_pb2 as pb
from meshline.inference import grpc_service_pb2_grpc as pb_grpc
from meshline.wire import PRINCIPAL_HEADER, PRIORITY_HEADER
from workers.oip import codec, datatypes
from workers.oip.errors import ErrorKind, InferenceError, InvalidInputError
from workers.torch_worker.backend import InferenceBackend, RequestMetrics
from workers.torch_worker.dataplane import (
    InferenceRequest,
    InferenceResponse,
    InferInput,
)
from workers.torch_worker.health import HealthState
from workers.torch_worker.identity import WorkerIdentity

log = logging.getLogger(__name__)

STATUS_CODES: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
    ErrorKind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
}

# The typed `InferTensorContents` field for each datatype (FP16 has none: raw only).
CONTENTS_FIELD: dict[str, str] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


# ---- wire <-> data plane ---------------------------------------------------------------------


def decode_request(request: pb.ModelInferRequest) -> tuple[InferenceRequest, bool]:
    """ModelInferRequest -> InferenceRequest, and whether the inputs came raw."""
    raw_contents = request.raw_input_contents  # each protobuf attribute read builds an object
    raw = len(raw_contents) > 0
    tensors = request.inputs
    if raw and len(raw_contents) != len(tensors):
        raise InvalidInputError(
            f"raw_input_contents has {len(raw_contents)} entries but the request "
            f"has {len(tensors)} inputs (one entry per input, in order)"
        )
    inputs: list[InferInput] = []
    for index, tensor in enumerate(tensors):
        name, datatype = tensor.name, tensor.datatype
        shape = codec.parse_shape(name, tensor.shape)
        if raw:
            if tensor.HasField("contents") and tensor.contents.ListFields():
                raise InvalidInputError(
                    f"input '{name}': give its data in contents or in raw_input_contents, not both",
                    tensor=name,
                )
            data = codec.from_raw(name, datatype, shape, raw_contents[index])
        else:
            data = _from_contents(tensor, shape)
        inputs.append(InferInput(name, datatype, shape, data))
    outputs = request.outputs
    parameters = request.parameters
    decoded = InferenceRequest(
        model_name=request.model_name,
        model_version=request.model_version,
        id=request.id,
        inputs=inputs,
        outputs=[o.name for o in outputs] if outputs else [],
        parameters={k: _parameter(v) for k, v in parameters.items()} if parameters else {},
    )
    return decoded, raw


def _from_contents(tensor: pb.ModelInferRequest.InferInputTensor, shape: tuple[int, ...]) -> Any:
    datatypes.lookup(tensor.datatype, tensor.name)  # unknown / unsupported -> clear error
    field = CONTENTS_FIELD.get(tensor.datatype)
    if field is None:
        raise InvalidInputError(
            f"input '{tensor.name}': {tensor.datatype} has no typed contents field; "
            "send it in raw_input_contents",
            tensor=tensor.name,
        )
    values = getattr(tensor.contents, field)
    if len(values) == 0 and codec.element_count(shape) > 0:
        present = [f.name for f, _ in tensor.contents.ListFields()]
        where = f" (the request fills {', '.join(present)})" if present else ""
        raise InvalidInputError(
            f"input '{tensor.name}': {tensor.datatype} data must be in contents.{field}{where}",
            tensor=tensor.name,
        )
    return codec.from_values(tensor.name, tensor.datatype, shape, values, strict=False)


def _parameter(value: pb.InferParameter) -> Any:
    which = value.WhichOneof("parameter_choice")
    return getattr(value, which) if which else None


def _metadata(context: grpc.aio.ServicerContext, key: str) -> str | None:
    for item in context.invocation_metadata() or ():
        if item.key == key:
            return str(item.value)
    return None


def _shown(principal: str | None) -> str:
    """The principal as a log shows it: quoted (it is caller-chosen text), or anonymous."""
    return repr(principal) if principal else "anonymous"


def encode_response(response: InferenceResponse, raw: bool) -> pb.ModelInferResponse:
    """InferenceResponse -> ModelInferResponse, raw or typed (raw when a type has no field)."""
    reply = pb.ModelInferResponse(
        model_name=response.model_name, model_version=response.model_version, id=response.id
    )
    raw = raw or any(o.datatype not in CONTENTS_FIELD for o in response.outputs)
    for output in response.outputs:
        tensor = reply.outputs.add(name=output.name, datatype=output.datatype)
        tensor.shape.extend(output.shape)
        if raw:
            reply.raw_output_contents.append(output.data.tobytes())
        else:
            getattr(tensor.contents, CONTENTS_FIELD[output.datatype]).extend(
                codec.to_list(output.data)
            )
    return reply


# ---- servicer --------------------------------------------------------------------------------


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """The six OIP RPCs; errors become INVALID_ARGUMENT / NOT_FOUND / UNAVAILABLE / INTERNAL."""

    def __init__(
        self, dataplane: InferenceBackend, metrics: RequestMetrics, identity: WorkerIdentity
    ) -> None:
        self._dp = dataplane
        self._metrics = metrics
        self._trailers = identity.pairs()

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerLiveResponse:
        context.set_trailing_metadata(self._trailers)
        return pb.ServerLiveResponse(live=self._dp.live())

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerReadyResponse:
        context.set_trailing_metadata(self._trailers)
        return pb.ServerReadyResponse(ready=self._dp.ready())

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelReadyResponse:
        try:
            ready = self._dp.model_ready(request.name, request.version)
        except InferenceError as exc:
            await self._abort(context, exc)
        context.set_trailing_metadata(self._trailers)
        return pb.ModelReadyResponse(ready=ready)

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerMetadataResponse:
        meta = self._dp.server_metadata()
        context.set_trailing_metadata(self._trailers)
        return pb.ServerMetadataResponse(
            name=meta.name, version=meta.version, extensions=list(meta.extensions)
        )

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        try:
            meta = self._dp.model_metadata(request.name, request.version)
        except InferenceError as exc:
            await self._abort(context, exc)
        context.set_trailing_metadata(self._trailers)
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta.name,
            versions=list(meta.versions),
            platform=meta.platform,
            inputs=[tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in meta.inputs],
            outputs=[tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in meta.outputs],
        )

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        principal = _metadata(context, PRINCIPAL_HEADER)
        try:
            with self._metrics.track("grpc", principal, request.model_name):
                self._dp.resolve(request.model_name, request.model_version)
                decoded, raw = decode_request(request)
                if self._dp.priority_levels:
                    decoded.priority_header = _metadata(context, PRIORITY_HEADER)
                response = await self._dp.infer(decoded)
                reply = encode_response(response, raw)
        except InferenceError as exc:
            await self._abort(context, exc, principal)
        except Exception as exc:
            log.exception("ModelInfer failed (principal %s)", _shown(principal))
            await context.abort(
                grpc.StatusCode.INTERNAL, f"internal error: {exc}", trailing_metadata=self._trailers
            )
        context.set_trailing_metadata(self._trailers)
        return reply

    async def _abort(
        self, context: grpc.aio.ServicerContext, exc: InferenceError, principal: str | None = None
    ) -> NoReturn:
        if exc.kind is ErrorKind.INTERNAL:
            log.error("inference failed (principal %s): %s", _shown(principal), exc.message)
        await context.abort(STATUS_CODES[exc.kind], exc.message, trailing_metadata=self._trailers)
        raise AssertionError("unreachable: abort() raises")


# ---- server ----------------------------------------------------------------------------------


def build_grpc_server(
    host: str,
    port: int,
    servicer: InferenceServicer,
    health: HealthState,
    max_message_bytes: int,
) -> grpc.aio.Server:
    """A grpc.aio server with the inference, health and reflection services, bound to host:port."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            # Fail loudly when the port is taken instead of sharing it with another process.
            ("grpc.so_reuseport", 0),
        ]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    reflection.enable_server_reflection(
        (
            pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,
            "grpc.health.v1.Health",
            reflection.SERVICE_NAME,
        ),
        server,
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"cannot listen for gRPC on {address}: {exc}") from exc
    if bound == 0:
        raise OSError(f"cannot listen for gRPC on {address}")
    return server
