"""ModelRepository in process, on real TorchScript files: load, reload, unload, LRU, isolation.

The gated model holds a request on its inference thread until the test opens the gate, so what
happens to requests in flight is decided by the test, not by timing.
"""

from __future__ import annotations

import asyncio
import gc
import json
import warnings
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from prometheus_client.parser import text_string_to_metric_families

from tests.workers.torch_worker.helpers import assert_matches_torch, images
from tests.workers.torch_worker.shared_helpers import (
    GATED_SIGNATURE,
    Gate,
    build_gated,
    flagged_row,
    free_row,
)
from workers.demo import DEMO_SIGNATURE, build_mlp
from workers.demo.model import build_faulty_mlp
from workers.oip.errors import (
    LoadFailedError,
    ModelExecutionError,
    ModelNotFoundError,
    NotReadyError,
    OutOfMemoryBudgetError,
)
from workers.oip.signature import Signature
from workers.torch_worker.activity import FIRST_FORWARD, LOAD, Activity, ActivityLog, read_activity
from workers.torch_worker.dataplane import InferenceRequest, InferenceResponse, InferInput
from workers.torch_worker.metrics import SharedMetrics
from workers.torch_worker.model_config import ModelConfig
from workers.torch_worker.repository import IndexEntry, ModelRepository, RepositorySettings

MIB = 2**20
GUARD_S = 60.0  # a hang guard only
DEMO = Signature.from_dict(DEMO_SIGNATURE)
GATED = Signature.from_dict(GATED_SIGNATURE)


class Readiness:
    """Records what the repository reports per model (the gRPC health servicer in a worker).

    A model named in `held` is held at the end of its load (loaded, not yet reported ready)
    until the test sets its event: what the test does meanwhile happens in that window.
    """

    def __init__(self) -> None:
        self.ready: dict[str, bool] = {}
        self.held: dict[str, asyncio.Event] = {}
        self.holding: set[str] = set()

    async def set_model_ready(self, model_name: str, ready: bool) -> None:
        release = self.held.get(model_name)
        if ready and release is not None:
            self.holding.add(model_name)
            await release.wait()
            self.holding.discard(model_name)
        self.ready[model_name] = ready


def repository(
    budget_bytes: int = 0,
    warmup: bool = True,
    activity: Path | None = None,
    room_wait_s: float = GUARD_S,
) -> tuple[ModelRepository, Readiness, SharedMetrics]:
    readiness, metrics = Readiness(), SharedMetrics()
    # No forward pass inline on the event loop: a gated request spins until the test opens its
    # gate, and the test runs on that loop.
    settings = RepositorySettings(
        "test",
        warmup=warmup,
        memory_budget_bytes=budget_bytes,
        inline_budget_s=0.0,
        room_wait_s=room_wait_s,
    )
    return ModelRepository(settings, metrics, readiness, ActivityLog(activity)), readiness, metrics


def mlp(tmp_path: Path, name: str, seed: int, memory_bytes: int | None = None) -> ModelConfig:
    path = build_mlp(tmp_path / f"{name}-{seed}.pt", seed=seed)
    return ModelConfig(name, "1", path, DEMO, memory_bytes)


def gated(
    tmp_path: Path, gate: Gate, name: str, version: str = "1", bias: float = 0.0, **kw: object
) -> ModelConfig:
    path = build_gated(tmp_path / f"{name}-{version}.pt", gate, bias, **kw)  # type: ignore[arg-type]
    return ModelConfig(name, version, path, GATED)


def request(model: str, x: np.ndarray, input_name: str = "input") -> InferenceRequest:
    return InferenceRequest(model, [InferInput(input_name, "FP32", x.shape, x)])


def gated_request(model: str, x: np.ndarray) -> InferenceRequest:
    return request(model, x, "x")


def local_torch(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out: np.ndarray = module(torch.from_numpy(x).clone()).numpy()
            return out

    return run


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` on the event loop (the repository works meanwhile); a hang guard only."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GUARD_S
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def state(repo: ModelRepository, name: str) -> tuple[str, str]:
    """The model's (state, reason) in the index; ("", "") before it is there."""
    entry = next((e for e in repo.index() if e.name == name), None)
    return (entry.state, entry.reason) if entry is not None else ("", "")


@pytest.fixture
def gate(tmp_path: Path) -> Gate:
    gate = Gate(tmp_path / "gate.bin")
    gate.set(1)
    return gate


@pytest.fixture
async def closing() -> AsyncIterator[list[ModelRepository]]:
    """Repositories a test made, closed at its end (their inference threads stopped)."""
    made: list[ModelRepository] = []
    yield made
    for repo in made:
        repo.start_draining()
        repo.close()


def output(response: InferenceResponse) -> np.ndarray:
    return response.outputs[0].data


# ---- load ------------------------------------------------------------------------------------


async def test_each_model_answers_with_its_own_weights_and_loading_again_is_a_no_op(
    tmp_path: Path, closing: list[ModelRepository]
) -> None:
    repo, readiness, _ = repository()
    closing.append(repo)
    configs = [mlp(tmp_path, f"m{seed}", seed) for seed in range(3)]
    for config in configs:
        await repo.load(config.name, config)
    x = images(2, seed=5)
    for config in configs:
        got = output(await repo.infer(request(config.name, x)))
        assert_matches_torch(got, local_torch(config.path)(x))
    loaded_before = repo._catalog["m0"].loaded
    await repo.load("m0", configs[0])
    await repo.load("m0", None)  # Triton's load without a config: as it was
    assert repo._catalog["m0"].loaded is loaded_before
    assert repo.index() == [IndexEntry(c.name, "1", "READY", "") for c in configs]
    assert readiness.ready == {"m0": True, "m1": True, "m2": True}
    assert repo.model_ready("m1") and repo.ready()


async def test_unknown_models_and_versions_are_not_found(
    tmp_path: Path, closing: list[ModelRepository]
) -> None:
    repo, _, _ = repository()
    closing.append(repo)
    await repo.load("a", mlp(tmp_path, "a", 1))
    with pytest.raises(ModelNotFoundError, match="unknown model 'b': this worker was never asked"):
        await repo.infer(request("b", images(1)))
    with pytest.raises(ModelNotFoundError, match="model 'a' has no version '2' here"):
        repo.resolve("a", "2")
    with pytest.raises(ModelNotFoundError, match="'c' is not in this worker's repository"):
        await repo.load("c", None)


async def test_memory_is_measured_at_load_or_taken_as_declared(
    tmp_path: Path, closing: list[ModelRepository]
) -> None:
    repo, _, metrics = repository()
    closing.append(repo)
    measured = mlp(tmp_path, "measured", 1)
    declared = mlp(tmp_path, "declared", 2, memory_bytes=7 * MIB)
    await repo.load("measured", measured)
    await repo.load("declared", declared)
    assert memory_gauge(metrics, "measured") >= measured.path.stat().st_size
    assert memory_gauge(metrics, "declared") == 7 * MIB


async def test_the_first_load_in_a_process_is_not_charged_the_process_setup(
    tmp_path: Path, closing: list[ModelRepository]
) -> None:
    """The first load also pays torch's one-time setup: that growth is the process's, so the
    first model is taken at its file's size; later loads at what they grew the process by."""
    readings = iter([100 * MIB, 112 * MIB, 112 * MIB, 115 * MIB])  # before/after each load
    readiness, metrics = Readiness(), SharedMetrics()
    settings = RepositorySettings("test", warmup=False, inline_budget_s=0.0, room_wait_s=GUARD_S)
    repo = ModelRepository(
        settings, metrics, readiness, ActivityLog(None), rss=lambda: next(readings)
    )
    closing.append(repo)
    first, second = mlp(tmp_path, "first", 1), mlp(tmp_path, "second", 2)
    await repo.load("first", first)
    await repo.load("second", second)
    assert memory_gauge(metrics, "first") == first.path.stat().st_size
    assert memory_gauge(metrics, "second") == 3 * MIB


def memory_gauge(metrics: SharedMetrics, model: str) -> float:
    versions = memory_by_version(metrics, model)
    assert len(versions) == 1, f"memory gauges of model {model}: {versions}"
    return next(iter(versions.values()))


def memory_by_version(metrics: SharedMetrics, model: str) -> dict[str, float]:
    """The model's memory gauges, by version (none while it is not loaded)."""
    return {
        labels["version"]: value
        for labels, value in samples(metrics, "meshline_worker_model_memory_bytes")
        if labels["model"] == model
    }


def queued(metrics: SharedMetrics, model: str) -> float:
    return sum(
        value
        for labels, value in samples(metrics, "meshline_worker_queued_requests")
        if labels["model"] == model
    )


def samples(metrics: SharedMetrics, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, float(sample.value))
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if sample.name == name
    ]


# ---- isolation -------------------------------------------------------------------------------


async def test_a_model_that_raises_fails_only_its_own_requests(
    tmp_path: Path, closing: list[ModelRepository]
) -> None:
    repo, _, _ = repository()
    closing.append(repo)
    good = mlp(tmp_path, "good", 1)
    faulty = ModelConfig("faulty", "1", build_faulty_mlp(tmp_path / "faulty.pt", seed=2), DEMO)
    await repo.load("good", good)
    await repo.load("faulty", faulty)
    inputs = [images(1, seed=i) for i in range(8)]
    calls = [repo.infer(request("faulty" if i % 2 else "good", x)) for i, x in enumerate(inputs)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    for i, (x, result) in enumerate(zip(inputs, results, strict=True)):
        if i % 2:
            assert isinstance(result, ModelExecutionError)
            assert "faulty model: refuses every non-zero input" in result.message
        else:
            assert isinstance(result, InferenceResponse)
            assert_matches_torch(output(result), local_torch(good.path)(x))
    assert state(repo, "faulty") == ("READY", "")


@pytest.mark.parametrize("kind", ["garbage", "missing", "wrong signature"])
async def test_a_model_that_does_not_load_fails_its_load_and_the_others_serve(
    tmp_path: Path, closing: list[ModelRepository], kind: str
) -> None:
    repo, readiness, _ = repository()
    closing.append(repo)
    good = mlp(tmp_path, "good", 1)
    await repo.load("good", good)
    path, signature = tmp_path / "bad.pt", DEMO
    expected = f"model 'bad' failed to load: model file {path} is not a loadable TorchScript"
    if kind == "garbage":
        path.write_bytes(b"not a model")
    elif kind == "missing":
        expected = f"model 'bad' failed to load: model file not found: {path}"
    else:
        build_mlp(path, seed=3)
        narrow = [{"name": "output", "datatype": "FP32", "shape": [-1, 5]}]
        signature = Signature.from_dict({**DEMO_SIGNATURE, "outputs": narrow})
        expected = f"model 'bad' failed to load: model file {path} does not fit its signature"
    with pytest.raises(LoadFailedError) as info:
        await repo.load("bad", ModelConfig("bad", "1", path, signature))
    assert expected in info.value.message
    assert state(repo, "bad") == ("UNAVAILABLE", info.value.message)
    with pytest.raises(NotReadyError, match="model 'bad' is not available: model 'bad' failed"):
        await repo.infer(request("bad", images(1)))
    x = images(1, seed=9)
    assert_matches_torch(output(await repo.infer(request("good", x))), local_torch(good.path)(x))
    assert readiness.ready == {"good": True}  # 'bad' never became ready


# ---- unload and reload -----------------------------------------------------------------------


async def test_unload_lets_admitted_requests_finish_refuses_new_ones_and_frees_the_model(
    tmp_path: Path, gate: Gate, closing: list[ModelRepository]
) -> None:
    repo, readiness, _ = repository()
    closing.append(repo)
    await repo.load("g", gated(tmp_path, gate, "g"))
    runtime = weakref.ref(repo._catalog["g"].loaded.dataplane.runtime)  # type: ignore[union-attr]
    gc.disable()  # the model must go when its last reference does, not at a collection
    try:
        with gate.closed():
            admitted = [
                asyncio.ensure_future(repo.infer(gated_request("g", row)))
                for row in (flagged_row(3.0), free_row(4.0), free_row(5.0))
            ]
            await eventually(lambda: repo.in_flight("g") == 3, "three requests in flight")
            unload = asyncio.ensure_future(repo.unload("g"))
            await eventually(lambda: state(repo, "g")[0] == "UNLOADING", "the unload began")
            assert readiness.ready["g"] is False and not repo.model_ready("g")
            with pytest.raises(NotReadyError, match="model 'g' is being unloaded"):
                await repo.infer(gated_request("g", free_row()))
            assert not unload.done()
        results = await asyncio.wait_for(asyncio.gather(*admitted), GUARD_S)
        for response, value in zip(results, (3.0, 4.0, 5.0), strict=True):
            assert output(response)[0, 0] == 2 * value
        await asyncio.wait_for(unload, GUARD_S)
        # Freed by reference counting alone (the inference thread lets go of its last task
        # just after answering it).
        await eventually(lambda: runtime() is None, "the model freed without a collection")
    finally:
        gc.enable()
    assert state(repo, "g") == ("UNAVAILABLE", "unloaded on request")
    with pytest.raises(ModelNotFoundError, match="model 'g' was unloaded from this worker"):
        await repo.infer(gated_request("g", free_row()))
    await repo.load("g", None)  # loads again as it was
    assert output(await repo.infer(gated_request("g", free_row(1.0))))[0, 0] == 2.0


async def test_a_changed_config_replaces_the_model_make_before_break(
    tmp_path: Path, gate: Gate, closing: list[ModelRepository]
) -> None:
    repo, _, _ = repository()
    closing.append(repo)
    await repo.load("g", gated(tmp_path, gate, "g", "1", bias=0.0))
    v2 = gated(tmp_path, gate, "g", "2", bias=100.0)
    with gate.closed():
        old_request = asyncio.ensure_future(repo.infer(gated_request("g", flagged_row(1.0))))
        await eventually(lambda: repo.in_flight("g") == 1, "a request in flight on version 1")
        reload = asyncio.ensure_future(repo.load("g", v2))
        await eventually(lambda: repo.index()[0].version == "2", "version 2 serves")
        new = await repo.infer(gated_request("g", free_row(1.0)))
        assert (new.model_version, output(new)[0, 0]) == ("2", 102.0)
        assert not reload.done(), "the load returns once the old copy has finished its requests"
    old = await asyncio.wait_for(old_request, GUARD_S)
    assert (old.model_version, output(old)[0, 0]) == ("1", 2.0)
    await asyncio.wait_for(reload, GUARD_S)
    assert repo.in_flight("g") == 0 and repo._retiring == []


async def test_a_failed_reload_leaves_the_serving_copy(
    tmp_path: Path, closing: list[ModelRepository]
) -> None:
    repo, _, _ = repository()
    closing.append(repo)
    good = mlp(tmp_path, "m", 1)
    await repo.load("m", good)
    broken = ModelConfig("m", "2", tmp_path / "missing.pt", DEMO)
    with pytest.raises(LoadFailedError):
        await repo.load("m", broken)
    entry = repo.index()[0]
    assert (entry.version, entry.state) == ("1", "READY")
    assert entry.reason.startswith("loading version 2 failed: model 'm' failed to load")
    x = images(1)
    assert_matches_torch(output(await repo.infer(request("m", x))), local_torch(good.path)(x))


# ---- memory budget ---------------------------------------------------------------------------


async def test_lru_makes_room_with_idle_models_only_and_evicted_ones_load_on_request(
    tmp_path: Path, gate: Gate, closing: list[ModelRepository]
) -> None:
    # No wait for room: the load that does not fit beside the busy model is refused at once.
    repo, readiness, _ = repository(budget_bytes=3 * MIB, room_wait_s=0.0)
    closing.append(repo)
    busy = gated(tmp_path, gate, "busy")
    busy = ModelConfig("busy", "1", busy.path, GATED, memory_bytes=MIB)
    a, c, d = (mlp(tmp_path, n, s, memory_bytes=MIB) for n, s in (("a", 1), ("c", 3), ("d", 4)))
    for config in (busy, a, c):
        await repo.load(config.name, config)
    with gate.closed():
        held = asyncio.ensure_future(repo.infer(gated_request("busy", flagged_row())))
        await eventually(lambda: repo.in_flight("busy") == 1, "a request in flight on 'busy'")
        await repo.infer(request("a", images(1)))  # 'busy' was used before 'a' and 'c'
        await repo.infer(request("c", images(1)))
        await repo.load("d", d)  # full: the least recently used idle model goes
        assert state(repo, "a") == (
            "UNAVAILABLE",
            "unloaded to make room for 'd' (the least recently used idle model); loads again "
            "on its next request",
        )
        assert readiness.ready["a"] is False
        assert [state(repo, n)[0] for n in ("busy", "c", "d")] == ["READY"] * 3

        x = images(1, seed=3)  # 'a' loads again on its request, in place of 'c' (now LRU)
        assert_matches_torch(output(await repo.infer(request("a", x))), local_torch(a.path)(x))
        assert state(repo, "c")[0] == "UNAVAILABLE" and state(repo, "a")[0] == "READY"

        big = ModelConfig("big", "1", d.path, DEMO, memory_bytes=3 * MIB)
        before = repo.index()
        with pytest.raises(OutOfMemoryBudgetError) as info:
            await repo.load("big", big)
        assert info.value.message.startswith(
            "model 'big' needs 3 MiB but the worker's memory budget is 3 MiB with 3 MiB in use: "
            "1 MiB by 1 model(s) that cannot be unloaded now (busy (1 MiB, 1 request(s) in "
            "flight)), 2 MiB by idle ones that would not make enough room; waited 0 s for "
            "their requests to finish"
        )
        assert [e for e in repo.index() if e.name != "big"] == before  # nothing was unloaded
        assert not held.done()
        # 'busy' stopped admitting while the load waited; refused, the load gives it back.
        after = asyncio.ensure_future(repo.infer(gated_request("busy", free_row(4.0))))
        await eventually(lambda: repo.in_flight("busy") == 2, "admitted behind the held one")
    assert output(await asyncio.wait_for(held, GUARD_S))[0, 0] == 2.0
    assert output(await asyncio.wait_for(after, GUARD_S))[0, 0] == 8.0


async def test_a_request_waiting_for_its_models_load_is_not_evicted_before_it_runs(
    tmp_path: Path, closing: list[ModelRepository]
) -> None:
    """The race: a request's model loads for it and, before the request starts on it, another
    load needs the room. The model is held for the request; the other load waits, then takes
    the room once the request is done."""
    repo, readiness, metrics = repository(budget_bytes=MIB)
    closing.append(repo)
    a, b = (mlp(tmp_path, n, s, memory_bytes=MIB) for n, s in (("a", 1), ("b", 2)))
    await repo.load("a", a)
    await repo.load("b", b)  # room for one model: 'a' goes
    assert state(repo, "a")[0] == "UNAVAILABLE"
    readiness.held["a"] = asyncio.Event()
    x = images(2, seed=6)
    waiting = asyncio.ensure_future(repo.infer(request("a", x)))  # 'a' loads again, 'b' goes
    await eventually(lambda: "a" in readiness.holding, "'a' loaded, its request not started")
    assert state(repo, "a") == ("READY", "") and state(repo, "b")[0] == "UNAVAILABLE"
    assert repo.in_flight("a") == 0 and queued(metrics, "a") == 1

    reload_b = asyncio.ensure_future(repo.load("b", None))
    await eventually(lambda: state(repo, "b")[1].startswith("waiting for room"), "'b' waits")
    assert state(repo, "b") == (
        "LOADING",
        "waiting for room: model 'b' needs 1 MiB but the worker's memory budget is 1 MiB with "
        "1 MiB in use: 1 MiB by 1 model(s) that cannot be unloaded now (a (1 MiB, 1 request(s) "
        "waiting to run on it)), 0 MiB by idle ones that would not make enough room",
    )
    assert state(repo, "a") == ("READY", "")

    readiness.held["a"].set()
    got = output(await asyncio.wait_for(waiting, GUARD_S))
    assert_matches_torch(got, local_torch(a.path)(x))
    await asyncio.wait_for(reload_b, GUARD_S)  # once the request was done, 'a' made room
    assert state(repo, "b") == ("READY", "") and state(repo, "a")[0] == "UNAVAILABLE"
    assert queued(metrics, "a") == 0


async def test_a_load_with_every_resident_busy_waits_and_succeeds_once_one_is_idle(
    tmp_path: Path, gate: Gate, closing: list[ModelRepository]
) -> None:
    repo, _, metrics = repository(budget_bytes=2 * MIB)
    closing.append(repo)
    p, q = (
        ModelConfig(n, "1", gated(tmp_path, gate, n).path, GATED, memory_bytes=MIB)
        for n in ("p", "q")
    )
    r = mlp(tmp_path, "r", 3, memory_bytes=MIB)
    await repo.load("p", p)
    await repo.load("q", q)
    with gate.closed():
        held = [
            asyncio.ensure_future(repo.infer(gated_request(n, flagged_row(v))))
            for n, v in (("p", 1.0), ("q", 2.0))
        ]
        await eventually(lambda: repo.in_flight("p") == repo.in_flight("q") == 1, "both busy")
        load_r = asyncio.ensure_future(repo.load("r", r))
        await eventually(lambda: state(repo, "r")[1].startswith("waiting for room"), "'r' waits")
        assert state(repo, "r")[0] == "LOADING"
        # 'p', the least recently used, admits no new request: one sent now waits for its
        # next load; 'q', not needed, still admits.
        later_p = asyncio.ensure_future(repo.infer(gated_request("p", free_row(5.0))))
        later_q = asyncio.ensure_future(repo.infer(gated_request("q", free_row(6.0))))
        await eventually(lambda: queued(metrics, "p") == 1, "the request for 'p' waits")
        await eventually(lambda: repo.in_flight("q") == 2, "the request for 'q' is admitted")
        assert repo.in_flight("p") == 1 and not load_r.done()
        assert [state(repo, n) for n in ("p", "q")] == [("READY", "")] * 2
    results = await asyncio.wait_for(asyncio.gather(*held, later_q), GUARD_S)
    assert [output(result)[0, 0] for result in results] == [2.0, 4.0, 12.0]
    await asyncio.wait_for(load_r, GUARD_S)  # 'p' went idle: it made the room
    assert output(await asyncio.wait_for(later_p, GUARD_S))[0, 0] == 10.0  # 'p' loaded again
    assert state(repo, "p") == ("READY", "")


async def test_the_memory_gauge_follows_each_copy_from_load_to_eviction_or_unload(
    tmp_path: Path, closing: list[ModelRepository]
) -> None:
    repo, _, metrics = repository(budget_bytes=MIB)
    closing.append(repo)
    a, b = (mlp(tmp_path, n, s, memory_bytes=MIB) for n, s in (("a", 1), ("b", 2)))
    await repo.load("a", a)
    assert memory_by_version(metrics, "a") == {"1": MIB}
    await repo.load("b", b)  # 'a' is evicted
    assert memory_by_version(metrics, "a") == {} and memory_by_version(metrics, "b") == {"1": MIB}
    await repo.infer(request("a", images(1)))  # 'a' loads again, 'b' is evicted
    assert memory_by_version(metrics, "a") == {"1": MIB} and memory_by_version(metrics, "b") == {}
    await repo.unload("a")
    assert memory_by_version(metrics, "a") == {}

    unbounded, _, metrics = repository()
    closing.append(unbounded)
    await unbounded.load("m", mlp(tmp_path, "m", 4, memory_bytes=MIB))
    v2 = ModelConfig("m", "2", mlp(tmp_path, "m", 5).path, DEMO, memory_bytes=2 * MIB)
    await unbounded.load("m", v2)  # the replaced copy's gauge goes with it
    assert memory_by_version(metrics, "m") == {"2": 2 * MIB}


# ---- the activity file -----------------------------------------------------------------------


async def test_the_activity_file_names_models_in_a_risky_call_until_it_returns(
    tmp_path: Path, gate: Gate, closing: list[ModelRepository]
) -> None:
    path = tmp_path / "activity.json"
    repo, _, _ = repository(warmup=False, activity=path)
    closing.append(repo)
    assert json.loads(path.read_text())["risky"] == []
    await repo.load("g", gated(tmp_path, gate, "g"))
    assert read_activity(path) == []
    with gate.closed():
        first = asyncio.ensure_future(repo.infer(gated_request("g", flagged_row())))
        await eventually(lambda: repo.in_flight("g") == 1, "the first request in flight")
        assert read_activity(path) == [Activity("g", "1", FIRST_FORWARD)]
    await asyncio.wait_for(first, GUARD_S)
    assert read_activity(path) == []

    loading_repo, _, _ = repository(warmup=True, activity=path)
    closing.append(loading_repo)
    with gate.closed():  # this model's warm-up (zeros) waits for the gate: its load is held
        z = gated(tmp_path, gate, "z", gate_zeros=True)
        load = asyncio.ensure_future(loading_repo.load("z", z))
        await eventually(lambda: state(loading_repo, "z")[0] == "LOADING", "the load began")
        await eventually(lambda: read_activity(path) != [], "the activity file names it")
        assert read_activity(path) == [Activity("z", "1", LOAD)]
    await asyncio.wait_for(load, GUARD_S)
    assert read_activity(path) == []
