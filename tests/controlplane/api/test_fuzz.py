"""Fuzz of the management API through a real control plane process.

Random requests for every management RPC (built from the protos' own descriptors, biased
towards names that exist and values at the edges) and random mutations of valid documents go
to a real `meshline controlplane` over gRPC. Every answer must be OK or a clear client error —
never INTERNAL or UNKNOWN, never an empty message — the server must stay up, and a refused
change must leave the store exactly as it was (read from the SQLite file itself).

Hypothesis runs derandomized: the same examples on every run, so a failure is reproducible
and the test cannot flake on a lucky draw.
"""

from __future__ import annotations

import copy
import math
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import descriptor as pb_descriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.client.bearer import bearer_channel
from controlplane.api.documents import DocumentError, parse_resource_document
from meshline.v1 import agent_pb2, api_pb2, api_pb2_grpc
from meshline.v1.resources_pb2 import ApiKeySpec
from tests.harness.credentials import api_credentials, management_channel, wait_serving
from tests.harness.processes import ManagedProcess, free_port
from workers.demo import build_mlp

# Codes a client can act on. ALREADY_EXISTS: a create of a taken name.
CLEAR_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.OUT_OF_RANGE,
}
# A join token that is not one, or is another region's: the agent is told so.
JOIN_REFUSALS = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
# Tables whose rows only the API writes (the controllers' own tables, e.g. rollouts, and the
# audit log, which records refusals on purpose, are left out).
USER_TABLES = (
    "models",
    "model_versions",
    "environments",
    "regions",
    "deployments",
    "api_keys",
    "api_key_credentials",
    "join_tokens",
)
# What random strings are drawn from besides free text: names the seeded store knows, and
# values that look right.
KNOWN_WORDS = [
    "production",
    "staging",
    "eu",
    "us",
    "fuzz-model",
    "fuzz-dep",
    "v1",
    "v2",
    "torch",
    "triton",
    "FP32",
    "INT64",
    "BYTES",
    "pause",
    "resume",
    "abort",
    "undo",
    "round_robin",
    "least_request",
    "nearest",
    "FR",
    "EU",
    "10.0.0.0/8",
    "::/0",
    "1h",
    "2026-01-01T00:00:00Z",
    "viewer",
    "deployer",
    "admin",
]
EDGE_INTS = [0, 1, -1, 2, 3, 100, 2**31 - 1, -(2**31), 2**32 - 1, 2**63 - 1, -(2**63)]
EDGE_FLOATS = [0.0, -0.0, 0.5, -1.0, 1e-9, 1e12, 1e308, math.inf, -math.inf, math.nan]

_INT_RANGES = {
    pb_descriptor.FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    pb_descriptor.FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    pb_descriptor.FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    pb_descriptor.FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    pb_descriptor.FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    pb_descriptor.FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    pb_descriptor.FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    pb_descriptor.FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    pb_descriptor.FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    pb_descriptor.FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


# --- random messages from descriptors --------------------------------------------------------


def _strings() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(KNOWN_WORDS),
        st.text(max_size=24),
        st.sampled_from(["", " ", "a" * 300, "../etc/passwd", "x\x00y", "名前", "-bad-", "UPPER"]),
    )


def _scalar(field: pb_descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == pb_descriptor.FieldDescriptor.TYPE_STRING:
        return _strings()
    if kind == pb_descriptor.FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == pb_descriptor.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (
        pb_descriptor.FieldDescriptor.TYPE_DOUBLE,
        pb_descriptor.FieldDescriptor.TYPE_FLOAT,
    ):
        return st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(-1e6, 1e6))
    if kind == pb_descriptor.FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values] + [99])
    low, high = _INT_RANGES[kind]
    edges = [i for i in EDGE_INTS if low <= i <= high]
    return st.one_of(st.sampled_from(edges), st.integers(max(low, -1000), min(high, 1000)))


def messages(descriptor: pb_descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """A random message of this type: each field set or not, one member of each oneof."""
    from google.protobuf import message_factory

    cls = message_factory.GetMessageClass(descriptor)

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        message = cls()
        chosen_oneofs = {
            oneof.name: draw(st.sampled_from([None, *[f.name for f in oneof.fields]]))
            for oneof in descriptor.oneofs
        }
        for field in descriptor.fields:
            oneof = field.containing_oneof
            if oneof is not None and chosen_oneofs[oneof.name] != field.name:
                continue
            if oneof is None and not draw(st.booleans()):
                continue
            _fill(draw, message, field, depth)
        return message

    return build()


def _fill(
    draw: st.DrawFn, message: Message, field: pb_descriptor.FieldDescriptor, depth: int
) -> None:
    is_message = field.type == pb_descriptor.FieldDescriptor.TYPE_MESSAGE
    if is_message and field.message_type.GetOptions().map_entry:
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        target = getattr(message, field.name)
        for _ in range(draw(st.integers(0, 2))):
            key = draw(_scalar(key_field))
            if value_field.type == pb_descriptor.FieldDescriptor.TYPE_MESSAGE:
                if depth < 4:
                    target[key].CopyFrom(draw(messages(value_field.message_type, depth + 1)))
            else:
                target[key] = draw(_scalar(value_field))
        return
    repeated = field.is_repeated
    count = draw(st.integers(0, 3)) if repeated else 1
    for _ in range(count):
        if is_message:
            if depth >= 4:
                return
            value = draw(messages(field.message_type, depth + 1))
            if repeated:
                getattr(message, field.name).add().CopyFrom(value)
            else:
                getattr(message, field.name).CopyFrom(value)
        elif repeated:
            getattr(message, field.name).append(draw(_scalar(field)))
        else:
            setattr(message, field.name, draw(_scalar(field)))


# --- the management API's methods -------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    service: str
    name: str
    request: pb_descriptor.Descriptor
    client_streaming: bool

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"


def management_methods() -> list[Method]:
    """Every RPC of the API port a client sends one request (or a stream of them) to: the
    management services and an agent's Join. Server-streaming downloads are read elsewhere
    (they stream a file, not a decision)."""
    methods = []
    services = [
        *api_pb2.DESCRIPTOR.services_by_name.values(),
        agent_pb2.DESCRIPTOR.services_by_name["JoinService"],
    ]
    for service in services:
        for method in service.methods:
            if method.server_streaming:
                continue
            if (
                method.name == "Renew"
            ):  # the mesh port's (mTLS): tested in tests/controlplane/agents
                continue
            methods.append(
                Method(service.full_name, method.name, method.input_type, method.client_streaming)
            )
    return sorted(methods, key=lambda m: m.path)


METHODS = management_methods()


def calls() -> st.SearchStrategy[tuple[Method, list[Message]]]:
    @st.composite
    def build(draw: st.DrawFn) -> tuple[Method, list[Message]]:
        method = draw(st.sampled_from(METHODS))
        count = draw(st.integers(1, 3)) if method.client_streaming else 1
        return method, [draw(messages(method.request)) for _ in range(count)]

    return build()


# --- the control plane, seeded -----------------------------------------------------------------


@dataclass
class Server:
    process: ManagedProcess
    channel: grpc.Channel
    database: Path

    def invoke(self, method: Method, requests: list[Message]) -> grpc.RpcError | None:
        """Call the method; its gRPC error, or None when it answered OK."""
        serialize = type(requests[0]).SerializeToString
        try:
            if method.client_streaming:
                stream = self.channel.stream_unary(
                    method.path, request_serializer=serialize, response_deserializer=lambda b: b
                )
                stream(iter(requests), timeout=20)
            else:
                unary = self.channel.unary_unary(
                    method.path, request_serializer=serialize, response_deserializer=lambda b: b
                )
                unary(requests[0], timeout=20)
        except grpc.RpcError as exc:
            return exc
        return None

    def user_rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """The API-written tables as stored now, read from the file itself."""
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as conn:
            return {
                table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in USER_TABLES
            }

    def alive(self) -> bool:
        stub = health_pb2_grpc.HealthStub(self.channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def seed_documents(model_path: Path) -> str:
    return f"""\
kind: Environment
metadata: {{name: production}}
spec:
  policies:
    - {{mode: mandatory, access: {{}}}}
---
kind: Model
metadata: {{name: fuzz-model}}
spec:
  versions:
    - name: v1
      runtime: torch
      path: {model_path}
      signature:
        inputs: [{{name: input, datatype: FP32, shape: [-1, 784]}}]
        outputs: [{{name: output, datatype: FP32, shape: [-1, 10]}}]
---
kind: Region
metadata: {{name: eu}}
spec: {{country: FR, continent: EU}}
---
kind: Deployment
metadata: {{name: fuzz-dep}}
spec:
  environment: production
  model: fuzz-model
  version: v1
  replicas: 1
  policies:
    - location: {{regions: [eu]}}
"""


def _resources(text: str, base_dir: Path) -> list[api_pb2.Resource]:
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    return [parse_resource_document(d, "<seed>", i, base_dir=base_dir) for i, d in enumerate(docs)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    state = tmp_path_factory.mktemp("fuzz")
    model_path = build_mlp(state / "m.pt")
    address = f"127.0.0.1:{free_port()}"
    cp_state = state / "controlplane"
    process = ManagedProcess(
        "controlplane",
        [
            sys.executable,
            "-m",
            "cli",
            "controlplane",
            "--listen",
            address,
            "--mesh-listen",
            f"127.0.0.1:{free_port()}",
            "--state-dir",
            str(cp_state),
        ],
        state,
    )
    try:
        wait_serving(address, cp_state)
        channel = _fuzzer_channel(address, cp_state)
        apply = api_pb2_grpc.ApplyServiceStub(channel)
        apply.Apply(api_pb2.ApplyRequest(resources=_resources(seed_documents(model_path), state)))
        yield Server(process, channel, cp_state / "meshline.db")
        channel.close()
    finally:
        process.stop()


# The fuzzer's own admin key: a name no drawn request uses, so that a random RevokeKey or
# RotateKey (of `admin`, say) does not take away the credential the next examples need.
FUZZER_KEY = "fuzzer-own-admin-key-0f3a"


def _fuzzer_channel(address: str, controlplane_state_dir: Path) -> grpc.Channel:
    bootstrap = management_channel(address, controlplane_state_dir)
    try:
        reply = api_pb2_grpc.KeyServiceStub(bootstrap).CreateKey(
            api_pb2.CreateKeyRequest(name=FUZZER_KEY, spec=ApiKeySpec(roles=["admin"])),
            timeout=10,
        )
    finally:
        bootstrap.close()
    return bearer_channel(
        grpc.secure_channel(address, api_credentials(controlplane_state_dir)), reply.secret
    )


def assert_clear_answer(server: Server, error: grpc.RpcError | None, what: str) -> None:
    if error is None:
        return
    code, details = error.code(), error.details() or ""
    clear = CLEAR_CODES | (JOIN_REFUSALS if ".JoinService/" in what else set())
    assert code in clear, f"{what}: answered {code.name}: {details!r}"
    assert details.strip(), f"{what}: {code.name} without a message"


FUZZ = settings(
    max_examples=700,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(call=calls())
def test_random_requests_get_clear_answers_and_refusals_store_nothing(
    server: Server, call: tuple[Method, list[Message]]
) -> None:
    method, requests = call
    before = server.user_rows()
    error = server.invoke(method, requests)
    assert_clear_answer(server, error, f"{method.path}({requests})")
    if error is not None:
        assert server.user_rows() == before, f"{method.path} failed but changed the store"
    assert server.alive()


# --- documents: valid ones, mutated ---------------------------------------------------------

_VALID_DOCS = [
    {
        "kind": "Deployment",
        "metadata": {"name": "fuzz-dep2"},
        "spec": {
            "environment": "production",
            "model": "fuzz-model",
            "version": "v1",
            "replicas": 1,
            "policies": [
                {"location": {"regions": ["eu"]}},
                {"routing": {"strategy": "least_request", "retries": 2, "timeout_s": 5}},
                {"failover": {"health_check": {"timeout_s": 1, "interval_s": 2}}},
                {"access": {"keys": ["a"], "firewall": {"allow": ["10.0.0.0/8"]}}},
                {"rate": {"principal": {"requests_per_second": 10, "burst": 20}}},
            ],
        },
    },
    {
        "kind": "Environment",
        "metadata": {"name": "staging"},
        "spec": {"policies": [{"mode": "mandatory", "location": {"continents": ["EU"]}}]},
    },
    {
        "kind": "Region",
        "metadata": {"name": "us"},
        "spec": {"country": "US", "continent": "NA", "max_replicas": 4},
    },
]
_ODD_VALUES = [None, -1, 0, 2**63, 1e308, math.nan, "", "x" * 300, [], {}, [1, "a"], {"x": 1}, True]


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


def _mutate(doc: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    out = copy.deepcopy(doc)
    parent = out
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "unknown" and isinstance(parent, dict):
        parent[f"{last}_typo"] = value
    else:
        parent[last] = value
    return out


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    doc = draw(st.sampled_from(_VALID_DOCS))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "unknown"]))
        value = draw(st.one_of(st.sampled_from(_ODD_VALUES), st.sampled_from(KNOWN_WORDS)))
        doc = _mutate(doc, path, action, value)
    return dict(doc) if isinstance(doc, dict) else {"kind": doc}


@FUZZ
@given(doc=mutated_documents(), dry_run=st.booleans())
def test_mutated_documents_get_clear_errors_and_nothing_half_stored(
    server: Server, doc: dict[str, Any], dry_run: bool
) -> None:
    try:
        resource = parse_resource_document(doc, "<fuzz>", 0)
    except DocumentError as exc:
        assert str(exc).strip(), f"parse of {doc} failed without a message"
        return
    before = server.user_rows()
    apply = api_pb2_grpc.ApplyServiceStub(server.channel)
    try:
        apply.Apply(api_pb2.ApplyRequest(resources=[resource], dry_run=dry_run), timeout=20)
        error = None
    except grpc.RpcError as exc:
        error = exc
    assert_clear_answer(server, error, f"apply {doc}")
    if error is not None or dry_run:
        assert server.user_rows() == before, f"apply {doc} stored something it should not have"
    assert server.alive()
