"""A real shared worker process (`python -m workers.torch_worker --shared`) serving many models,
loaded and unloaded over the model repository extension, over gRPC and REST.

Workers that hold gated models run with `--inline-max-ms 0`: a gated request must wait on an
inference thread, not on the event loop the other models are served from.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshline.inference import grpc_service_pb2 as pb
from meshline.inference import grpc_service_pb2_grpc as pb_grpc
from meshline.wire import DEPLOYMENT_HEADER
from tests.harness.processes import wait_until
from tests.workers.torch_worker.helpers import assert_matches_torch, http, images
from tests.workers.torch_worker.shared_helpers import (
    GATED_SIGNATURE,
    GUARD_S,
    Gate,
    SharedWorkerHandle,
    build_gated,
    config_of,
    control_stub_of,
    flagged_row,
    free_row,
    grpc_load,
    index,
    infer_request,
    load_request,
    metric,
    metric_samples,
    output_of,
    running_shared_worker,
    stub_of,
)
from workers.agent.launch import RUNTIME_TORCH
from workers.agent.worker_load import parse_worker_load
from workers.demo import build_mlp
from workers.demo.model import build_faulty_mlp
from workers.torch_worker.activity import LOAD, Activity, read_activity

MIB = 2**20
MODELS = 50
NO_INLINE = ["--inline-max-ms", "0"]


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Gate:
    gate = Gate(tmp_path_factory.mktemp("gate") / "gate.bin")
    gate.set(1)
    return gate


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedWorkerHandle]:
    with running_shared_worker(tmp_path_factory.mktemp("shared-logs"), NO_INLINE) as handle:
        yield handle


@pytest.fixture
def stub(shared: SharedWorkerHandle) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    """On the inference port: where a gateway routes clients."""
    with stub_of(shared) as stub:
        yield stub


@pytest.fixture
def control(shared: SharedWorkerHandle) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    """On the control port: the model repository, the agent's."""
    with control_stub_of(shared) as stub:
        yield stub


def local_torch(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out: np.ndarray = module(torch.from_numpy(x).clone()).numpy()
            return out

    return run


def rest_infer(
    worker: SharedWorkerHandle,
    model: str,
    x: np.ndarray,
    input_name: str = "input",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, object]]:
    body = {"inputs": [{"name": input_name, "datatype": "FP32", "shape": list(x.shape),
                        "data": x.ravel().tolist()}]}  # fmt: skip
    url = f"{worker.http_url}/v2/models/{model}/infer"
    reply = http(url, "POST", json.dumps(body).encode(), headers)
    return reply.status, reply.json()


def health_of(worker: SharedWorkerHandle, service: str, target: str = "") -> int:
    with grpc.insecure_channel(target or worker.grpc_target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=GUARD_S
        )
        return int(reply.status)


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


# ---- many models -----------------------------------------------------------------------------


def test_fifty_models_in_one_worker_answer_as_fifty_separate_ones(
    shared: SharedWorkerHandle,
    stub: pb_grpc.GRPCInferenceServiceStub,
    control: pb_grpc.GRPCInferenceServiceStub,
    tmp_path: Path,
) -> None:
    names = [f"pack-{i}" for i in range(MODELS)]
    paths = [build_mlp(tmp_path / f"{name}.pt", seed=1000 + i) for i, name in enumerate(names)]
    for name, path in zip(names, paths, strict=True):
        grpc_load(control, name, config_of(path, version="7"))
    listed = index(control)
    assert all(listed[name] == ("7", "READY", "") for name in names)

    for i, (name, path) in enumerate(zip(names, paths, strict=True)):
        x = images(2, seed=i)
        want = local_torch(path)(x)
        reply = stub.ModelInfer(infer_request(name, x), timeout=GUARD_S)
        assert (reply.model_name, reply.model_version) == (name, "7")
        assert_matches_torch(output_of(reply), want)
        status, doc = rest_infer(shared, name, x)
        assert status == 200, doc
        out = doc["outputs"][0]  # type: ignore[index]
        assert_matches_torch(np.array(out["data"], np.float32).reshape(out["shape"]), want)
    # Neighbours differ: a mix-up of models would not go unseen.
    x = images(1, seed=99)
    assert not np.allclose(local_torch(paths[0])(x), local_torch(paths[1])(x))

    name = names[17]
    assert health_of(shared, name) == SERVING and health_of(shared, "") == SERVING
    assert stub.ModelReady(pb.ModelReadyRequest(name=name), timeout=GUARD_S).ready
    meta = stub.ModelMetadata(pb.ModelMetadataRequest(name=name), timeout=GUARD_S)
    assert (meta.name, list(meta.versions), meta.inputs[0].name) == (name, ["7"], "input")
    for protocol in ("grpc", "http"):
        count = metric(shared, "meshline_worker_requests_total", model=name, protocol=protocol)
        assert count == 1.0, protocol
    assert metric(shared, "meshline_worker_model_memory_bytes", model=name) > 0
    # The agent's reading of a worker's metrics tells the models apart.
    scraped = http(f"{shared.http_url}/metrics").body.decode()
    load = parse_worker_load(scraped, RUNTIME_TORCH, name)
    assert (load.queued, load.requests, load.batches) == (0, 2, 2)
    server = http(f"{shared.http_url}/v2").json()
    assert "model_repository" in server["extensions"]


def test_the_same_load_again_changes_nothing_and_a_load_without_config_needs_one(
    control: pb_grpc.GRPCInferenceServiceStub, tmp_path: Path
) -> None:
    path = build_mlp(tmp_path / "same.pt", seed=5)
    grpc_load(control, "same", config_of(path))
    grpc_load(control, "same", config_of(path))
    grpc_load(control, "same", None)  # tritonclient's load_model(name): reload as configured
    assert index(control)["same"] == ("1", "READY", "")
    with pytest.raises(grpc.RpcError) as info:
        grpc_load(control, "never-configured", None)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    assert "'never-configured' is not in this worker's repository" in str(info.value.details())


# ---- who may call what -----------------------------------------------------------------------

SCOPE_REFUSAL = (
    "this request was authorized for deployment 'scope-a' (x-meshline-deployment) but names "
    "model 'scope-b': a caller of one deployment cannot reach another's model"
)


def test_a_request_authorized_for_one_deployment_never_reaches_another_model(
    shared: SharedWorkerHandle,
    stub: pb_grpc.GRPCInferenceServiceStub,
    control: pb_grpc.GRPCInferenceServiceStub,
    tmp_path: Path,
) -> None:
    paths = {
        n: build_mlp(tmp_path / f"{n}.pt", seed=s) for n, s in (("scope-a", 51), ("scope-b", 52))
    }
    for name, path in paths.items():
        grpc_load(control, name, config_of(path))
    x = images(1, seed=7)
    as_a = ((DEPLOYMENT_HEADER, "scope-a"),)  # what the gateway sets for a caller of scope-a
    reply = stub.ModelInfer(infer_request("scope-a", x), metadata=as_a, timeout=GUARD_S)
    assert_matches_torch(output_of(reply), local_torch(paths["scope-a"])(x))
    status, _ = rest_infer(shared, "scope-a", x, headers={DEPLOYMENT_HEADER: "scope-a"})
    assert status == 200

    counters = ("meshline_worker_requests_total", "meshline_worker_batch_requests_count")
    before = [metric(shared, counter, model="scope-b") for counter in counters]
    for target in (stub, control):  # the control port checks it too
        calls: list[tuple[Any, Any]] = [
            (target.ModelInfer, infer_request("scope-b", x)),
            (target.ModelMetadata, pb.ModelMetadataRequest(name="scope-b")),
            (target.ModelReady, pb.ModelReadyRequest(name="scope-b")),
        ]
        for method, message in calls:
            with pytest.raises(grpc.RpcError) as info:
                method(message, metadata=as_a, timeout=GUARD_S)
            assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
            assert info.value.details() == SCOPE_REFUSAL
    # Two headers (one the client's): every value must name the model.
    both = (*as_a, (DEPLOYMENT_HEADER, "scope-b"))
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(infer_request("scope-b", x), metadata=both, timeout=GUARD_S)
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED

    status, doc = rest_infer(shared, "scope-b", x, headers={DEPLOYMENT_HEADER: "scope-a"})
    assert (status, doc) == (403, {"error": SCOPE_REFUSAL})
    for path in ("/v2/models/scope-b", "/v2/models/scope-b/ready", "/v2/models/scope-b/versions/1"):
        reply_http = http(f"{shared.http_url}{path}", headers={DEPLOYMENT_HEADER: "scope-a"})
        assert (reply_http.status, reply_http.json()) == (403, {"error": SCOPE_REFUSAL}), path
    # The refused requests never ran the model, nor were counted as its requests.
    assert [metric(shared, counter, model="scope-b") for counter in counters] == before

    # Without the header: a local caller (the agent, a test) that skipped the gateway.
    reply = stub.ModelInfer(infer_request("scope-b", x), timeout=GUARD_S)
    assert_matches_torch(output_of(reply), local_torch(paths["scope-b"])(x))
    assert metric(shared, counters[1], model="scope-b") == before[1] + 1


CONTROL_ONLY = "the model repository is served on the worker's control port only"


def test_the_model_repository_is_served_on_the_control_port_only(
    shared: SharedWorkerHandle,
    stub: pb_grpc.GRPCInferenceServiceStub,
    control: pb_grpc.GRPCInferenceServiceStub,
    tmp_path: Path,
) -> None:
    path = build_mlp(tmp_path / "ctl.pt", seed=61)
    grpc_load(control, "ctl", config_of(path))
    intruder = tmp_path / "intruder.pt"
    build_mlp(intruder, seed=62)
    calls: list[tuple[Any, Any]] = [
        (stub.RepositoryIndex, pb.RepositoryIndexRequest()),
        (stub.RepositoryModelLoad, load_request("ctl", config_of(intruder))),
        (stub.RepositoryModelLoad, load_request("new", config_of(intruder))),
        (stub.RepositoryModelUnload, pb.RepositoryModelUnloadRequest(model_name="ctl")),
    ]
    for method, message in calls:
        with pytest.raises(grpc.RpcError) as info:
            method(message, timeout=GUARD_S)
        assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert info.value.details() == CONTROL_ONLY
    body = json.dumps({"parameters": {"config": config_of(intruder)}}).encode()
    for route in ("index", "models/ctl/load", "models/ctl/unload", "models/new/load"):
        reply = http(f"{shared.http_url}/v2/repository/{route}", "POST", body)
        assert reply.status == 404, route  # no repository routes on the inference HTTP port
    # Nothing changed: 'ctl' serves its own weights, 'new' was never loaded.
    listed = index(control)
    assert listed["ctl"] == ("1", "READY", "") and "new" not in listed
    x = images(1, seed=3)
    assert_matches_torch(
        output_of(stub.ModelInfer(infer_request("ctl", x), timeout=GUARD_S)), local_torch(path)(x)
    )
    # The control port serves the OIP API and gRPC health too (the agent probes there).
    reply_ctl = control.ModelInfer(infer_request("ctl", x), timeout=GUARD_S)
    assert_matches_torch(output_of(reply_ctl), local_torch(path)(x))
    assert health_of(shared, "ctl", shared.control_target) == SERVING


# ---- isolation -------------------------------------------------------------------------------


def test_a_model_that_raises_fails_only_its_own_requests(
    shared: SharedWorkerHandle,
    stub: pb_grpc.GRPCInferenceServiceStub,
    control: pb_grpc.GRPCInferenceServiceStub,
    tmp_path: Path,
) -> None:
    good = build_mlp(tmp_path / "good.pt", seed=21)
    grpc_load(control, "iso-good", config_of(good))
    grpc_load(control, "iso-faulty", config_of(build_faulty_mlp(tmp_path / "faulty.pt", seed=22)))
    inputs = [images(1, seed=i) for i in range(12)]
    futures = [
        stub.ModelInfer.future(
            infer_request("iso-faulty" if i % 2 else "iso-good", x), timeout=GUARD_S
        )
        for i, x in enumerate(inputs)
    ]
    for i, (x, future) in enumerate(zip(inputs, futures, strict=True)):
        if i % 2:
            error = future.exception(timeout=GUARD_S)
            assert isinstance(error, grpc.RpcError)
            assert error.code() is grpc.StatusCode.INTERNAL
            assert "faulty model: refuses every non-zero input" in str(error.details())
        else:
            assert_matches_torch(output_of(future.result(timeout=GUARD_S)), local_torch(good)(x))
    errors = "meshline_worker_request_errors_total"
    assert metric(shared, errors, model="iso-faulty", kind="internal") == 6.0
    assert metric(shared, errors, model="iso-good") == 0.0
    assert index(control)["iso-faulty"][1] == "READY"


def test_a_model_file_that_does_not_load_answers_its_load_and_the_others_serve(
    shared: SharedWorkerHandle,
    stub: pb_grpc.GRPCInferenceServiceStub,
    control: pb_grpc.GRPCInferenceServiceStub,
    tmp_path: Path,
) -> None:
    good = build_mlp(tmp_path / "good.pt", seed=31)
    grpc_load(control, "bad-neighbour", config_of(good))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model")
    reason = f"model 'bad-file' failed to load: model file {garbage} is not a loadable TorchScript"
    with pytest.raises(grpc.RpcError) as info:
        grpc_load(control, "bad-file", config_of(garbage))
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert reason in str(info.value.details())
    body = json.dumps({"parameters": {"config": config_of(garbage)}}).encode()
    reply = http(f"{shared.control_http_url}/v2/repository/models/bad-file/load", "POST", body)
    assert reply.status == 400 and reason in reply.json()["error"]

    _, state, why = index(control)["bad-file"]
    assert (state, why.startswith(reason)) == ("UNAVAILABLE", True)
    status, doc = rest_infer(shared, "bad-file", images(1))
    assert status == 503 and "model 'bad-file' is not available" in str(doc["error"])
    x = images(3, seed=4)
    reply_ok = stub.ModelInfer(infer_request("bad-neighbour", x), timeout=GUARD_S)
    assert_matches_torch(output_of(reply_ok), local_torch(good)(x))

    bad_config = json.dumps({"parameters": {"config": '{"path": "a.pt"}'}}).encode()
    reply = http(f"{shared.control_http_url}/v2/repository/models/x/load", "POST", bad_config)
    assert reply.status == 400
    assert reply.json()["error"] == (
        "config of model 'x': 'signature' (inputs and outputs) is missing"
    )
    assert "x" not in index(control)  # a refused config leaves nothing behind


# ---- unload under load -----------------------------------------------------------------------


@dataclass
class Outcome:
    started_before_unload: bool
    ok: bool
    status: str = ""
    message: str = ""


class ClientLoop:
    """Sends requests to one model, one after another, over gRPC or REST, until stopped."""

    def __init__(self, worker: SharedWorkerHandle, model: str, protocol: str) -> None:
        self.worker, self.model, self.protocol = worker, model, protocol
        self.outcomes: list[Outcome] = []
        self.unload_began = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        with grpc.insecure_channel(self.worker.grpc_target) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            while not self.stop.is_set():
                before = not self.unload_began.is_set()
                self.outcomes.append(self.one(stub, before))

    def one(self, stub: pb_grpc.GRPCInferenceServiceStub, before: bool) -> Outcome:
        x = free_row(2.0)
        if self.protocol == "grpc":
            try:
                reply = stub.ModelInfer(infer_request(self.model, x, "x"), timeout=GUARD_S)
            except grpc.RpcError as error:
                return Outcome(before, False, error.code().name, str(error.details()))
            return Outcome(before, bool(output_of(reply)[0, 0] == 4.0))
        status, doc = rest_infer(self.worker, self.model, x, "x")
        if status != 200:
            return Outcome(before, False, str(status), str(doc["error"]))
        return Outcome(before, doc["outputs"][0]["data"][0] == 4.0)  # type: ignore[index]

    def saw(self, status: str) -> bool:
        return any(o.status == status for o in list(self.outcomes))


CLEAR_ERRORS = {
    ("UNAVAILABLE", "model 'loop' is being unloaded: it takes no new requests"),
    ("503", "model 'loop' is being unloaded: it takes no new requests"),
    ("NOT_FOUND", "model 'loop' was unloaded from this worker"),
    ("404", "model 'loop' was unloaded from this worker"),
}


def test_unload_under_a_client_loop_fails_no_admitted_request(
    shared: SharedWorkerHandle,
    stub: pb_grpc.GRPCInferenceServiceStub,
    control: pb_grpc.GRPCInferenceServiceStub,
    gate: Gate,
    tmp_path: Path,
) -> None:
    grpc_load(control, "loop", config_of(build_gated(tmp_path / "g.pt", gate), GATED_SIGNATURE))
    loops = [ClientLoop(shared, "loop", p) for p in ("grpc", "http")]
    threads = [threading.Thread(target=loop.run) for loop in loops]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: all(len(lp.outcomes) >= 3 for lp in loops), GUARD_S, "both loops run")
        with gate.closed():
            held = stub.ModelInfer.future(
                infer_request("loop", flagged_row(3.0), "x"), timeout=GUARD_S
            )
            # The held request, then one request of each loop behind it on the model's thread.
            in_flight = "meshline_worker_inflight_requests"
            wait_until(lambda: metric(shared, in_flight, model="loop") == 3, GUARD_S, "3 in flight")
            for loop in loops:
                loop.unload_began.set()
            unload = control.RepositoryModelUnload.future(
                pb.RepositoryModelUnloadRequest(model_name="loop"), timeout=GUARD_S
            )
            wait_until(lambda: index(control)["loop"][1] == "UNLOADING", GUARD_S, "unloading")
            # The worker's own count: all three were admitted before the unload began.
            assert index(control)["loop"][2] == "3 request(s) in flight finish first"
            with pytest.raises(grpc.RpcError) as info:
                stub.ModelInfer(infer_request("loop", free_row(), "x"), timeout=GUARD_S)
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE
            assert health_of(shared, "loop") == NOT_SERVING
            assert not stub.ModelReady(pb.ModelReadyRequest(name="loop"), timeout=GUARD_S).ready
            assert not unload.done()
        assert output_of(held.result(timeout=GUARD_S))[0, 0] == 6.0
        unload.result(timeout=GUARD_S)
        assert index(control)["loop"] == ("1", "UNAVAILABLE", "unloaded on request")
        wait_until(
            lambda: loops[0].saw("NOT_FOUND") and loops[1].saw("404"), GUARD_S, "clear errors"
        )
    finally:
        for loop in loops:
            loop.stop.set()
        for thread in threads:
            thread.join(GUARD_S)
    for loop in loops:
        admitted = [o for o in loop.outcomes if o.started_before_unload]
        assert admitted and all(o.ok for o in admitted), (loop.protocol, admitted)
        after = [o for o in loop.outcomes if not o.started_before_unload]
        for outcome in after:
            assert outcome.ok or (outcome.status, outcome.message) in CLEAR_ERRORS, outcome
    assert health_of(shared, "") == SERVING  # the worker serves on


# ---- memory budget ---------------------------------------------------------------------------


def test_lru_under_a_small_budget_evicts_an_idle_model_never_a_busy_one(
    tmp_path_factory: pytest.TempPathFactory, gate: Gate
) -> None:
    tmp = tmp_path_factory.mktemp("lru")
    # No wait for room: the load that does not fit beside the busy model is refused at once.
    budget = ["--memory-budget-bytes", str(3 * MIB), "--room-wait-s", "0", *NO_INLINE]
    with (
        running_shared_worker(tmp / "logs", budget) as worker,
        stub_of(worker) as stub,
        control_stub_of(worker) as control,
    ):
        gated = build_gated(tmp / "busy.pt", gate)
        grpc_load(control, "busy", config_of(gated, GATED_SIGNATURE, memory_bytes=MIB))
        paths = {n: build_mlp(tmp / f"{n}.pt", seed=s) for n, s in (("a", 1), ("c", 3), ("d", 4))}
        for name in ("a", "c"):
            grpc_load(control, name, config_of(paths[name], memory_bytes=MIB))
        with gate.closed():
            held = stub.ModelInfer.future(infer_request("busy", flagged_row(), "x"), GUARD_S)
            wait_until(
                lambda: metric(worker, "meshline_worker_inflight_requests", model="busy") == 1,
                GUARD_S,
                "a request in flight on 'busy'",
            )
            for name in ("a", "c"):  # 'busy' was used first: it is the least recently used
                stub.ModelInfer(infer_request(name, images(1)), timeout=GUARD_S)
            grpc_load(control, "d", config_of(paths["d"], memory_bytes=MIB))
            listed = index(control)
            assert listed["a"][1:] == (
                "UNAVAILABLE",
                "unloaded to make room for 'd' (the least recently used idle model); loads "
                "again on its next request",
            )
            assert [listed[n][1] for n in ("busy", "c", "d")] == ["READY"] * 3
            assert health_of(worker, "a") == NOT_SERVING
            memory = "meshline_worker_model_memory_bytes"  # the evicted copy's gauge went
            assert metric_samples(worker, memory, model="a") == []
            assert metric_samples(worker, memory, model="d") == [MIB]

            x = images(2, seed=8)  # 'a' comes back on its next request, in place of 'c'
            reply = stub.ModelInfer(infer_request("a", x), timeout=GUARD_S)
            assert_matches_torch(output_of(reply), local_torch(paths["a"])(x))
            assert index(control)["c"][1] == "UNAVAILABLE" and index(control)["a"][1] == "READY"
            assert metric_samples(worker, memory, model="a") == [MIB]
            assert metric_samples(worker, memory, model="c") == []

            big = config_of(paths["d"], memory_bytes=3 * MIB)
            with pytest.raises(grpc.RpcError) as info:
                grpc_load(control, "big", big)
            assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert (
                "model 'big' needs 3 MiB but the worker's memory budget is 3 MiB with 3 MiB in "
                "use: 1 MiB by 1 model(s) that cannot be unloaded now (busy (1 MiB, 1 request(s) "
                "in flight))"
            ) in str(info.value.details())
            body = json.dumps({"parameters": {"config": big}}).encode()
            reply_http = http(
                f"{worker.control_http_url}/v2/repository/models/big/load", "POST", body
            )
            assert reply_http.status == 429 and "needs 3 MiB" in reply_http.json()["error"]
            assert [index(control)[n][1] for n in ("busy", "a", "d")] == ["READY"] * 3
            assert not held.done()
        assert output_of(held.result(timeout=GUARD_S))[0, 0] == 2.0
        assert metric(worker, "meshline_worker_memory_budget_bytes") == 3 * MIB


def test_two_models_alternating_in_room_for_one_fail_no_request(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Each request for the evicted model waits for its reload; that reload waits for the other
    model's requests to finish (it admits none meanwhile). No request fails, whoever wins."""
    tmp = tmp_path_factory.mktemp("alternate")
    paths = {n: build_mlp(tmp / f"{n}.pt", seed=s) for n, s in (("alt-a", 71), ("alt-b", 72))}
    budget = ["--memory-budget-bytes", str(MIB), *NO_INLINE]  # room for one of the two
    with running_shared_worker(tmp / "logs", budget) as worker, control_stub_of(worker) as control:
        for name, path in paths.items():
            grpc_load(control, name, config_of(path, memory_bytes=MIB))
        inputs = [images(1, seed=i) for i in range(10)]
        wants = {name: [local_torch(path)(x) for x in inputs] for name, path in paths.items()}

        def client(name: str, protocol: str) -> list[str]:
            """Every input once; what went wrong, if anything."""
            failures: list[str] = []
            with stub_of(worker) as stub:
                for x, want in zip(inputs, wants[name], strict=True):
                    if protocol == "grpc":
                        try:
                            got = output_of(
                                stub.ModelInfer(infer_request(name, x), timeout=GUARD_S)
                            )
                        except grpc.RpcError as error:
                            failures.append(f"{name} grpc: {error.code().name} {error.details()}")
                            continue
                    else:
                        status, doc = rest_infer(worker, name, x)
                        if status != 200:
                            failures.append(f"{name} http: {status} {doc['error']}")
                            continue
                        out = doc["outputs"][0]  # type: ignore[index]
                        got = np.array(out["data"], np.float32).reshape(out["shape"])
                    if not np.allclose(got, want, rtol=1e-6, atol=1e-6):
                        failures.append(f"{name} {protocol}: another model's output")
            return failures

        clients = [(n, p) for n in paths for p in ("grpc", "http", "grpc")]
        with ThreadPoolExecutor(len(clients)) as pool:
            results = list(pool.map(lambda c: client(*c), clients))
        assert [f for failures in results for f in failures] == []
        assert "unloaded to make room for" in worker.process.log()  # they did take turns
        assert metric(worker, "meshline_worker_queued_requests") == 0  # nobody left waiting


def test_a_load_with_every_resident_busy_waits_and_succeeds_once_one_is_idle(
    tmp_path_factory: pytest.TempPathFactory, gate: Gate
) -> None:
    tmp = tmp_path_factory.mktemp("wait-for-room")
    budget = ["--memory-budget-bytes", str(MIB), *NO_INLINE]  # room for one model
    gated = build_gated(tmp / "busy.pt", gate)
    following = build_mlp(tmp / "next.pt", seed=81)
    with (
        running_shared_worker(tmp / "logs", budget) as worker,
        stub_of(worker) as stub,
        control_stub_of(worker) as control,
    ):
        grpc_load(control, "busy", config_of(gated, GATED_SIGNATURE, memory_bytes=MIB))
        with gate.closed():
            held = stub.ModelInfer.future(infer_request("busy", flagged_row(), "x"), GUARD_S)
            wait_until(
                lambda: metric(worker, "meshline_worker_inflight_requests", model="busy") == 1,
                GUARD_S,
                "a request in flight on 'busy'",
            )
            loading = control.RepositoryModelLoad.future(
                load_request("next", config_of(following, memory_bytes=MIB)), timeout=GUARD_S
            )
            wait_until(
                lambda: index(control).get("next", ("", "", ""))[2].startswith("waiting for room"),
                GUARD_S,
                "the load waits for room",
            )
            assert index(control)["next"] == (
                "1",
                "LOADING",
                "waiting for room: model 'next' needs 1 MiB but the worker's memory budget is "
                "1 MiB with 1 MiB in use: 1 MiB by 1 model(s) that cannot be unloaded now (busy "
                "(1 MiB, 1 request(s) in flight)), 0 MiB by idle ones that would not make enough "
                "room",
            )
            # 'busy' admits no new request while the load waits for it: this one waits for its
            # next load instead of failing.
            later = stub.ModelInfer.future(infer_request("busy", free_row(5.0), "x"), GUARD_S)
            wait_until(
                lambda: metric(worker, "meshline_worker_queued_requests", model="busy") == 1,
                GUARD_S,
                "the new request for 'busy' waits",
            )
            assert not loading.done() and index(control)["busy"][1] == "READY"
        assert output_of(held.result(timeout=GUARD_S))[0, 0] == 2.0
        loading.result(timeout=GUARD_S)  # 'busy' went idle: the load took its room
        x = images(1, seed=4)
        reply = stub.ModelInfer(infer_request("next", x), timeout=GUARD_S)
        assert_matches_torch(output_of(reply), local_torch(following)(x))
        assert output_of(later.result(timeout=GUARD_S))[0, 0] == 10.0  # 'busy' loaded again


# ---- loading, and a crash in the middle of one -----------------------------------------------


def test_a_load_in_progress_is_listed_and_a_crash_during_it_names_the_model(
    tmp_path_factory: pytest.TempPathFactory, gate: Gate
) -> None:
    tmp = tmp_path_factory.mktemp("crash")
    activity = tmp / "activity.json"
    flags = ["--activity-file", str(activity), *NO_INLINE]
    calm = build_mlp(tmp / "calm.pt", seed=41)
    risky = build_gated(tmp / "risky.pt", gate, gate_zeros=True)  # its warm-up waits
    with (
        running_shared_worker(tmp / "logs", flags) as worker,
        stub_of(worker) as stub,
        control_stub_of(worker) as control,
    ):
        grpc_load(control, "calm", config_of(calm))
        assert read_activity(activity) == []
        with gate.closed(), ThreadPoolExecutor(1) as pool:
            loading: Future[None] = pool.submit(
                lambda: grpc_load(control, "risky", config_of(risky, GATED_SIGNATURE))
            )
            wait_until(lambda: index(control).get("risky", ("", ""))[1] == "LOADING", GUARD_S)
            assert index(control)["risky"] == ("1", "LOADING", "")
            assert not stub.ModelReady(pb.ModelReadyRequest(name="risky"), timeout=GUARD_S).ready
            x = images(1, seed=2)  # the others serve while it loads
            reply = stub.ModelInfer(infer_request("calm", x), timeout=GUARD_S)
            assert_matches_torch(output_of(reply), local_torch(calm)(x))
            assert read_activity(activity) == [Activity("risky", "1", LOAD)]

            os.kill(worker.process.pid, signal.SIGKILL)  # the model "crashed" the process
            worker.process.proc.wait(timeout=GUARD_S)
            assert isinstance(loading.exception(timeout=GUARD_S), grpc.RpcError)
        assert read_activity(activity) == [Activity("risky", "1", LOAD)]


def test_a_stop_signal_during_a_load_stops_the_worker(
    tmp_path_factory: pytest.TempPathFactory, gate: Gate
) -> None:
    tmp = tmp_path_factory.mktemp("stop")
    stuck = build_gated(tmp / "stuck.pt", gate, gate_zeros=True)  # its warm-up waits
    # Without a control HTTP port, as the agent starts them: the repository over gRPC only.
    with (
        running_shared_worker(tmp / "logs", NO_INLINE, control_http=False) as worker,
        control_stub_of(worker) as control,
    ):
        with gate.closed(), ThreadPoolExecutor(1) as pool:
            loading = pool.submit(
                lambda: grpc_load(control, "stuck", config_of(stuck, GATED_SIGNATURE))
            )
            wait_until(lambda: index(control).get("stuck", ("", ""))[1] == "LOADING", GUARD_S)
            worker.process.proc.send_signal(signal.SIGTERM)
            assert worker.process.proc.wait(timeout=GUARD_S) == 0  # the load never finishes
            assert isinstance(loading.exception(timeout=GUARD_S), grpc.RpcError)
        assert "exiting with 1 forward pass(es) or load(s) still running" in worker.process.log()
