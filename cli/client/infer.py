"""`meshline infer`: one Open Inference Protocol request through a region's gateway."""

from __future__ import annotations

import json
import math
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
import numpy as np

from meshline import wire
from meshline.inference import grpc_service_pb2 as oip
from meshline.inference import grpc_service_pb2_grpc as oip_grpc
from meshline.tls_failure import tls_handshake_failed

NUMPY_TO_OIP = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
}
OIP_TO_NUMPY = {v: k for k, v in NUMPY_TO_OIP.items()}


def numpy_dtype(datatype: str) -> np.dtype:
    """The numpy type of an OIP datatype this command can print."""
    if datatype not in OIP_TO_NUMPY:
        raise InferError(f"datatype {datatype} is not supported by `meshline infer`")
    return np.dtype(OIP_TO_NUMPY[datatype])


class InferError(Exception):
    """The gateway or the worker refused the request; the message says why.

    `unauthenticated`: the gateway wanted a (valid) credential (gRPC UNAUTHENTICATED, HTTP 401).
    """

    def __init__(self, message: str, unauthenticated: bool = False) -> None:
        super().__init__(message)
        self.unauthenticated = unauthenticated


@dataclass(frozen=True)
class ClientTls:
    """TLS to a gateway that serves it (edge TLS): its certificate checked against `ca_pem`
    (PEM CA certificates), or against the system's roots when None, and against the address
    dialled."""

    ca_pem: bytes | None = None
    # Where the trust came from, for messages ("the mesh CA ...", "--ca-file X").
    source: str = "the system's trusted CAs"

    def grpc_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.ca_pem)

    def ssl_context(self) -> ssl.SSLContext:
        cadata = self.ca_pem.decode() if self.ca_pem is not None else None
        context = ssl.create_default_context(cadata=cadata)
        context.set_alpn_protocols(["http/1.1"])
        return context

    def untrusted(self, gateway: str, detail: str) -> InferError:
        return InferError(
            f"no TLS connection to gateway {gateway}: its certificate is not one {self.source} "
            f"vouches for, or does not name {gateway.rpartition(':')[0]}; give the CA that "
            f"signed it with --ca-file ({detail})"
        )


@dataclass(frozen=True)
class InferResult:
    outputs: dict[str, np.ndarray]
    served_by: str  # worker id reported by the worker, if any
    region: str


def parse_input(spec: str) -> tuple[str, list[float]]:
    """`NAME=1,2,3` or `NAME=[[1,2],[3,4]]` → (name, flat values)."""
    if "=" not in spec:
        raise InferError(f"--input {spec!r}: expected NAME=VALUES, e.g. input=0.5 or input=1,2,3")
    name, raw = spec.split("=", 1)
    raw = raw.strip()
    try:
        values = np.asarray(
            json.loads(raw)
            if raw.startswith("[")
            else [float(v) for v in raw.split(",") if v.strip()],
            dtype=np.float64,
        )
    except ValueError as exc:
        raise InferError(f"--input {name}: cannot read values {raw[:40]!r}: {exc}") from None
    return name, values.reshape(-1).tolist()


def shape_for(values: list[float], declared: list[int]) -> list[int]:
    """Fit values to the declared shape: -1 becomes 1 (or what the values need)."""
    fixed = math.prod(d for d in declared if d != -1)
    if -1 in declared and fixed and len(values) % fixed == 0 and len(values) >= fixed:
        missing = len(values) // fixed
        first = True
        shape = []
        for d in declared:
            shape.append(missing if d == -1 and first else (1 if d == -1 else d))
            first = first and d != -1
        return shape
    return [1 if d == -1 else d for d in declared]


def build_array(values: list[float], shape: list[int], datatype: str) -> np.ndarray:
    dtype = numpy_dtype(datatype)
    count = math.prod(shape)
    if len(values) == 1 and count > 1:
        values = values * count  # one value fills the whole tensor
    if len(values) != count:
        raise InferError(f"{len(values)} values do not fit shape {shape} ({count} elements)")
    return np.asarray(values, dtype=dtype).reshape(shape)


def _metadata(
    deployment: str, environment: str, credentials: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    return [
        (wire.DEPLOYMENT_HEADER, deployment),
        (wire.ENVIRONMENT_HEADER, environment),
        *credentials,
    ]


def infer_grpc(
    gateway: str,
    deployment: str,
    environment: str,
    inputs: list[tuple[str, list[float]]],
    timeout_s: float = 30.0,
    credentials: Sequence[tuple[str, str]] = (),
    tls: ClientTls | None = None,
) -> InferResult:
    """`credentials`: headers that carry the caller's key (cli.client.credentials.ApiKey);
    `tls`: speak TLS to the gateway (its region serves edge TLS)."""
    channel = (
        grpc.secure_channel(gateway, tls.grpc_credentials())
        if tls is not None
        else grpc.insecure_channel(gateway)
    )
    with channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        md = _metadata(deployment, environment, credentials)
        try:
            meta = stub.ModelMetadata(
                oip.ModelMetadataRequest(name=deployment), metadata=md, timeout=timeout_s
            )
            declared = {t.name: t for t in meta.inputs}
            request = oip.ModelInferRequest(model_name=deployment)
            for name, values in inputs:
                if name not in declared:
                    raise InferError(
                        f"deployment {deployment} has no input {name!r}; inputs: {sorted(declared)}"
                    )
                spec = declared[name]
                array = build_array(values, shape_for(values, list(spec.shape)), spec.datatype)
                tensor = request.inputs.add(name=name, datatype=spec.datatype)
                tensor.shape.extend(array.shape)
                request.raw_input_contents.append(array.tobytes())
            response, call = stub.ModelInfer.with_call(request, metadata=md, timeout=timeout_s)
        except grpc.RpcError as exc:
            code = exc.code()
            details = exc.details() or ""
            if tls is not None and tls_handshake_failed(code, details, name_mismatch_too=True):
                raise tls.untrusted(gateway, details) from None
            raise InferError(
                f"{exc.details()} [{code.name}]",
                unauthenticated=code is grpc.StatusCode.UNAUTHENTICATED,
            ) from None
    trailers = dict(call.trailing_metadata() or ())
    outputs = {}
    for i, out in enumerate(response.outputs):
        dtype = numpy_dtype(out.datatype)
        outputs[out.name] = np.frombuffer(response.raw_output_contents[i], dtype=dtype).reshape(
            list(out.shape)
        )
    return InferResult(
        outputs,
        str(trailers.get(wire.WORKER_HEADER, "")),
        str(trailers.get(wire.REGION_HEADER, "")),
    )


def infer_http(
    gateway: str,
    deployment: str,
    environment: str,
    inputs: list[tuple[str, list[float]]],
    timeout_s: float = 30.0,
    credentials: Sequence[tuple[str, str]] = (),
    tls: ClientTls | None = None,
) -> InferResult:
    """`credentials`: headers that carry the caller's key (cli.client.credentials.ApiKey);
    `tls`: https to the gateway (its region serves edge TLS)."""
    context = tls.ssl_context() if tls is not None else None
    headers = {
        wire.ENVIRONMENT_HEADER: environment,
        "content-type": "application/json",
        **dict(credentials),
    }
    base = f"{'https' if tls is not None else 'http'}://{gateway}/v2/models/{deployment}"
    try:
        with urllib.request.urlopen(
            urllib.request.Request(base, headers=headers), timeout=timeout_s, context=context
        ) as reply:
            meta = json.load(reply)
        declared = {t["name"]: t for t in meta.get("inputs", [])}
        body_inputs = []
        for name, values in inputs:
            if name not in declared:
                raise InferError(
                    f"deployment {deployment} has no input {name!r}; inputs: {sorted(declared)}"
                )
            spec = declared[name]
            array = build_array(values, shape_for(values, spec["shape"]), spec["datatype"])
            body_inputs.append(
                {
                    "name": name,
                    "datatype": spec["datatype"],
                    "shape": list(array.shape),
                    "data": array.reshape(-1).tolist(),
                }
            )
        request = urllib.request.Request(
            f"{base}/infer",
            method="POST",
            headers=headers,
            data=json.dumps({"inputs": body_inputs}).encode(),
        )
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as reply:
            body = json.load(reply)
            worker = reply.headers.get(wire.WORKER_HEADER, "")
            region = reply.headers.get(wire.REGION_HEADER, "")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            text = json.loads(text).get("error", text)
        except ValueError:
            pass
        raise InferError(f"HTTP {exc.code}: {text}", unauthenticated=exc.code == 401) from None
    except TimeoutError:
        raise InferError(f"no answer from gateway {gateway} within {timeout_s:.0f}s") from None
    except urllib.error.URLError as exc:
        if tls is not None and isinstance(exc.reason, ssl.SSLError):
            raise tls.untrusted(gateway, str(exc.reason)) from None
        raise InferError(f"cannot reach gateway {gateway}: {exc.reason}") from None
    outputs = {
        o["name"]: np.asarray(o["data"], dtype=numpy_dtype(o["datatype"])).reshape(o["shape"])
        for o in body["outputs"]
    }
    return InferResult(outputs, worker, region)
