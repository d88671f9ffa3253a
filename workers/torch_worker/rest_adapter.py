"""REST adapter: the OIP `/v2` HTTP/JSON API on aiohttp, a thin layer over one model's DataPlane
or a shared worker's ModelRepository (workers/torch_worker/backend.py).

Speaks the binary tensor extension exactly as tritonclient.http does: the body is a JSON header of
`Inference-Header-Content-Length` bytes followed by raw tensors (`parameters.binary_data_size` per
input, in input order); outputs come back raw when asked for with `parameters.binary_data` (per
output) or `parameters.binary_data_output` (request-wide default).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from meshline.wire import PRINCIPAL_HEADER, PRIORITY_HEADER
from workers.oip import codec
from workers.oip.errors import ErrorKind, InferenceError, InvalidInputError
from workers.torch_worker.backend import InferenceBackend, RequestMetrics
from workers.torch_worker.dataplane import (
    InferenceRequest,
    InferenceResponse,
    InferInput,
    ModelMetadata,
)
from workers.torch_worker.identity import WorkerIdentity

log = logging.getLogger(__name__)

HEADER_LENGTH = "Inference-Header-Content-Length"

HTTP_STATUS: dict[ErrorKind, int] = {
    ErrorKind.INVALID_ARGUMENT: 400,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.INTERNAL: 500,
    # google.rpc's mapping of the gRPC codes to HTTP
    ErrorKind.RESOURCE_EXHAUSTED: 429,
    ErrorKind.FAILED_PRECONDITION: 400,
    ErrorKind.PERMISSION_DENIED: 403,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class OutputEncoding:
    """Which outputs the client wants as raw binary rather than JSON `data`."""

    default_binary: bool = False
    per_output: Mapping[str, bool] = field(default_factory=dict)

    def binary(self, name: str) -> bool:
        return self.per_output.get(name, self.default_binary)


# ---- wire <-> data plane ---------------------------------------------------------------------


def decode_infer_request(
    body: bytes, header_length: str | None, model_name: str, model_version: str
) -> tuple[InferenceRequest, OutputEncoding]:
    """An infer POST body (JSON, or JSON + binary tensors) -> InferenceRequest."""
    view = memoryview(body)
    if header_length is None:
        json_part, binary = view, view[len(view) :]
    else:
        try:
            size = int(header_length)
        except ValueError:
            raise InvalidInputError(
                f"{HEADER_LENGTH} is not an integer: {header_length!r}"
            ) from None
        if not 0 < size <= len(view):
            raise InvalidInputError(f"{HEADER_LENGTH} is {size} but the body has {len(view)} bytes")
        json_part, binary = view[:size], view[size:]
    try:
        # json.loads reads bytes itself: copy out only the JSON header of a binary body.
        doc = json.loads(body if header_length is None else bytes(json_part))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidInputError("request body must be a JSON object with 'inputs'")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list):
        raise InvalidInputError("request field 'inputs' must be a list of tensors")

    inputs: list[InferInput] = []
    cursor = 0
    for index, item in enumerate(raw_inputs):
        tensor, cursor = _decode_input(item, index, binary, cursor)
        inputs.append(tensor)
    if cursor != len(binary):
        raise InvalidInputError(
            f"{len(binary) - cursor} bytes of binary data after the JSON header belong to no "
            "input (check parameters.binary_data_size)"
        )

    parameters = _object(doc.get("parameters"), "request field 'parameters'")
    outputs, encoding = _decode_outputs(doc.get("outputs"), parameters)
    request_id = doc.get("id", "")
    decoded = InferenceRequest(
        model_name=model_name,
        model_version=model_version,
        id=request_id if isinstance(request_id, str) else str(request_id),
        inputs=inputs,
        outputs=outputs,
        parameters=dict(parameters),
    )
    return decoded, encoding


def _decode_input(item: Any, index: int, binary: memoryview, cursor: int) -> tuple[InferInput, int]:
    if not isinstance(item, dict):
        raise InvalidInputError(f"inputs[{index}] must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"inputs[{index}]: 'name' must be a non-empty string")
    datatype = item.get("datatype")
    if not isinstance(datatype, str):
        raise InvalidInputError(f"input '{name}': 'datatype' must be a string", tensor=name)
    if "shape" not in item:
        raise InvalidInputError(f"input '{name}': 'shape' is missing", tensor=name)
    shape = codec.parse_shape(name, item["shape"])
    params = _object(item.get("parameters"), f"input '{name}': 'parameters'")
    size = params.get("binary_data_size")
    if size is not None:
        if "data" in item:
            raise InvalidInputError(
                f"input '{name}': give either 'data' or parameters.binary_data_size, not both",
                tensor=name,
            )
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidInputError(
                f"input '{name}': parameters.binary_data_size must be a non-negative integer",
                tensor=name,
            )
        if cursor + size > len(binary):
            raise InvalidInputError(
                f"input '{name}': binary_data_size {size} runs past the end of the body "
                f"({len(binary) - cursor} bytes of binary data left; is the "
                f"{HEADER_LENGTH} header set?)",
                tensor=name,
            )
        data = codec.from_raw(name, datatype, shape, binary[cursor : cursor + size])
        return InferInput(name, datatype, shape, data), cursor + size
    if "data" not in item:
        raise InvalidInputError(
            f"input '{name}': no data (give 'data', or parameters.binary_data_size with the "
            f"{HEADER_LENGTH} header)",
            tensor=name,
        )
    data = codec.from_values(name, datatype, shape, item["data"], strict=True)
    return InferInput(name, datatype, shape, data), cursor


def _decode_outputs(
    raw_outputs: Any, parameters: Mapping[str, Any]
) -> tuple[list[str], OutputEncoding]:
    default_binary = parameters.get("binary_data_output", False)
    if not isinstance(default_binary, bool):
        raise InvalidInputError("parameters.binary_data_output must be true or false")
    if raw_outputs is None:
        return [], OutputEncoding(default_binary)
    if not isinstance(raw_outputs, list):
        raise InvalidInputError("request field 'outputs' must be a list")
    names: list[str] = []
    per_output: dict[str, bool] = {}
    for index, item in enumerate(raw_outputs):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidInputError(f"outputs[{index}] must be an object with a 'name'")
        name = item["name"]
        params = _object(item.get("parameters"), f"output '{name}': 'parameters'")
        if "binary_data" in params:
            if not isinstance(params["binary_data"], bool):
                raise InvalidInputError(
                    f"output '{name}': parameters.binary_data must be true or false",
                    tensor=name,
                )
            per_output[name] = params["binary_data"]
        names.append(name)
    return names, OutputEncoding(default_binary, per_output)


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what} must be an object")
    return value


def encode_infer_response(response: InferenceResponse, encoding: OutputEncoding) -> web.Response:
    """InferenceResponse -> JSON body, or JSON header + raw tensors when any output is binary."""
    outputs: list[dict[str, Any]] = []
    blobs: list[memoryview] = []
    for output in response.outputs:
        entry: dict[str, Any] = {
            "name": output.name,
            "datatype": output.datatype,
            "shape": list(output.shape),
        }
        if encoding.binary(output.name):
            blob = codec.to_raw(output.data)
            entry["parameters"] = {"binary_data_size": blob.nbytes}
            blobs.append(blob)
        else:
            entry["data"] = codec.to_list(output.data)
        outputs.append(entry)
    doc: dict[str, Any] = {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": outputs,
    }
    if response.id:
        doc["id"] = response.id
    header = json.dumps(doc, separators=(",", ":")).encode()
    if not blobs:
        return web.Response(body=header, content_type="application/json")
    return web.Response(
        body=b"".join([header, *blobs]),
        content_type="application/octet-stream",
        headers={HEADER_LENGTH: str(len(header))},
    )


def model_metadata_json(meta: ModelMetadata) -> dict[str, Any]:
    return {
        "name": meta.name,
        "versions": list(meta.versions),
        "platform": meta.platform,
        "inputs": [t.to_dict() for t in meta.inputs],
        "outputs": [t.to_dict() for t in meta.outputs],
    }


# ---- handlers --------------------------------------------------------------------------------


class RestHandlers:
    """aiohttp handlers; errors are raised as InferenceError and turned into JSON by middleware."""

    def __init__(self, dataplane: InferenceBackend, metrics: RequestMetrics) -> None:
        self._dp = dataplane
        self._metrics = metrics

    async def live(self, request: web.Request) -> web.Response:
        live = self._dp.live()
        return web.json_response({"live": live}, status=200 if live else 503)

    async def ready(self, request: web.Request) -> web.Response:
        ready = self._dp.ready()
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    async def server_metadata(self, request: web.Request) -> web.Response:
        meta = self._dp.server_metadata()
        return web.json_response(
            {"name": meta.name, "version": meta.version, "extensions": list(meta.extensions)}
        )

    async def model_metadata(self, request: web.Request) -> web.Response:
        name, version = _model_of(request)
        return web.json_response(model_metadata_json(self._dp.model_metadata(name, version)))

    async def model_ready(self, request: web.Request) -> web.Response:
        name, version = _model_of(request)
        ready = self._dp.model_ready(name, version)
        return web.json_response({"name": name, "ready": ready}, status=200 if ready else 503)

    async def infer(self, request: web.Request) -> web.Response:
        name, version = _model_of(request)
        with self._metrics.track("http", request.headers.get(PRINCIPAL_HEADER), name):
            self._dp.resolve(name, version)
            body = await request.read()
            decoded, encoding = decode_infer_request(
                body, request.headers.get(HEADER_LENGTH), name, version
            )
            if self._dp.priority_levels:
                decoded.priority_header = request.headers.get(PRIORITY_HEADER)
            response = await self._dp.infer(decoded)
            reply = encode_infer_response(response, encoding)
        accepted = request.headers.get("Accept-Encoding", "")
        if "gzip" in accepted or "deflate" in accepted:
            reply.enable_compression()  # tritonclient's response_compression_algorithm
        return reply

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._metrics.render(), headers={"Content-Type": self._metrics.content_type}
        )


def _model_of(request: web.Request) -> tuple[str, str]:
    return request.match_info["model"], request.match_info.get("version", "")


def _shown(request: web.Request) -> str:
    """The caller as a log shows it: quoted (it is caller-chosen text), or anonymous."""
    principal = request.headers.get(PRINCIPAL_HEADER)
    return repr(principal) if principal else "anonymous"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error becomes `{"error": "..."}` with the status its kind maps to."""
    try:
        return await handler(request)
    except InferenceError as exc:
        if exc.kind is ErrorKind.INTERNAL:
            log.error(
                "%s %s failed (principal %s): %s",
                request.method,
                request.path,
                _shown(request),
                exc.message,
            )
        return web.json_response({"error": exc.message}, status=HTTP_STATUS[exc.kind])
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response(
            {"error": f"{exc.reason}: {request.method} {request.path}"}, status=exc.status
        )
    except Exception as exc:
        log.exception("%s %s failed (principal %s)", request.method, request.path, _shown(request))
        return web.json_response({"error": f"internal error: {exc}"}, status=500)


def build_rest_app(
    dataplane: InferenceBackend,
    metrics: RequestMetrics,
    identity: WorkerIdentity,
    max_message_bytes: int,
    middlewares: Sequence[Middleware] = (),
) -> web.Application:
    """The aiohttp application: OIP routes, /metrics, JSON errors, identity headers;
    `middlewares` run inside the error middleware (their InferenceErrors become JSON)."""
    app = web.Application(
        client_max_size=max_message_bytes, middlewares=[error_middleware, *middlewares]
    )
    h = RestHandlers(dataplane, metrics)
    model = "/v2/models/{model}"
    versioned = "/v2/models/{model}/versions/{version}"
    app.router.add_get("/v2/health/live", h.live)
    app.router.add_get("/v2/health/ready", h.ready)
    app.router.add_get("/v2", h.server_metadata)
    for prefix in (model, versioned):
        app.router.add_get(prefix, h.model_metadata)
        app.router.add_get(prefix + "/ready", h.model_ready)
        app.router.add_post(prefix + "/infer", h.infer)
    app.router.add_get("/metrics", h.metrics)

    pairs = identity.pairs()

    async def add_identity(request: web.Request, response: web.StreamResponse) -> None:
        for key, value in pairs:
            response.headers[key] = value

    app.on_response_prepare.append(add_identity)
    return app
