"""Packing on the agent's side, its pure parts: where a model goes, what a shared worker's crash
means for each of its models, and how the gateway's view of one shared address is read per
model (each cluster names its own worker)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.workers.agent.test_envoy_view import _cluster_lines, _host_lines
from workers.agent.config import AgentConfig
from workers.agent.envoy_process import parse_clusters
from workers.agent.exits import FIRST_BACKOFF_S, note_shared_exit
from workers.agent.gateway_facts import WorkerAddresses, gateway_facts
from workers.agent.shared_workers import (
    SharedFacts,
    SharedWorkers,
    choose_shared_worker,
    model_config_json,
)
from workers.agent.standby_pool import StandbyPool
from workers.demo import build_mlp

SIGNATURE: dict[str, object] = {
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 784]}],
    "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}],
}


def _facts(shared_id: str, *deployments: str, isolated: bool = False, accepting: bool = True):
    return SharedFacts(shared_id, frozenset(deployments), isolated, accepting)


@pytest.mark.parametrize(
    ("shared", "deployment", "isolate", "cap", "chosen"),
    [
        ([], "a", False, 50, None),  # none runs: start one
        ([_facts("s1", "x")], "a", False, 50, "s1"),
        # the fullest with room, so that an emptied one can stop
        ([_facts("s1", "x"), _facts("s2", "y", "z")], "a", False, 50, "s2"),
        ([_facts("s2", "x"), _facts("s1", "y")], "a", False, 50, "s1"),  # ties: first id
        ([_facts("s1", "x", "y")], "a", False, 2, None),  # full
        ([_facts("s1", "a")], "a", False, 50, None),  # the name is taken there (other env/track)
        ([_facts("s1", "a"), _facts("s2", "b")], "a", False, 50, "s2"),
        ([_facts("s1", "x", isolated=True)], "a", False, 50, None),  # an isolated one is alone
        ([_facts("s1", "x", accepting=False)], "a", False, 50, None),  # dead or stopping
        ([_facts("s1", "x")], "a", True, 50, None),  # a model that crashed one goes alone
    ],
)
def test_choose_shared_worker(
    shared: list[SharedFacts], deployment: str, isolate: bool, cap: int, chosen: str | None
) -> None:
    assert choose_shared_worker(shared, deployment, isolate, cap) == chosen


def test_the_model_named_in_the_activity_file_is_charged_and_isolated() -> None:
    out = note_shared_exit(
        0, 3.0, "bad", "eu-shared-1", -11, "Segmentation fault", frozenset({"bad"})
    )
    assert out.isolate
    assert out.note.failures == 1 and out.note.backoff_s == FIRST_BACKOFF_S
    assert "crashed its shared worker eu-shared-1 (exit code -11)" in out.note.last_error
    assert "killed by SIGSEGV" in out.note.last_error  # not its last log line


def test_a_neighbour_restarts_at_once_uncharged_and_is_told_which_model() -> None:
    out = note_shared_exit(2, 3.0, "good", "eu-shared-1", -11, "killed", frozenset({"bad"}))
    assert not out.isolate
    assert out.note.failures == 2 and out.note.backoff_s == 0.0
    assert "taken down by model 'bad'" in out.note.last_error
    assert "eu-shared-1 exited with code -11: killed by SIGSEGV" in out.note.last_error


def test_a_crash_no_model_is_named_for_charges_every_model() -> None:
    out = note_shared_exit(0, 3.0, "good", "eu-shared-1", 1, "oops", frozenset())
    assert not out.isolate
    assert out.note.failures == 1 and out.note.backoff_s == FIRST_BACKOFF_S
    assert out.note.last_error.startswith("its shared worker eu-shared-1 exited with code 1")


SHARED_GRPC, SHARED_HTTP = "127.0.0.1:7000", "127.0.0.1:7001"


def _shared_view_text(b_flags: str) -> str:
    """Two models of one shared worker, a and b: one address each port, one cluster per model
    and port, each naming its own worker id."""
    return "".join(
        [
            _cluster_lines("a.prod.grpc"),
            _host_lines("a.prod.grpc", SHARED_GRPC, 2, hostname="w-a"),
            _cluster_lines("a.prod.http"),
            _host_lines("a.prod.http", SHARED_HTTP, 1, hostname="w-a"),
            _cluster_lines("b.prod.grpc"),
            _host_lines("b.prod.grpc", SHARED_GRPC, 5, flags=b_flags, hostname="w-b"),
            _cluster_lines("b.prod.http"),
            _host_lines("b.prod.http", SHARED_HTTP, 0, hostname="w-b"),
        ]
    )


def test_a_shared_address_is_read_per_model_by_its_hostname() -> None:
    # b was just added: Envoy has not health-checked it in its gRPC cluster yet.
    view = parse_clusters(_shared_view_text("/pending_active_hc"))
    workers = [
        WorkerAddresses("w-a", SHARED_GRPC, SHARED_HTTP, shared=True),
        WorkerAddresses("w-b", SHARED_GRPC, SHARED_HTTP, shared=True),
    ]
    facts = gateway_facts(view, workers, frozenset(), frozenset())
    # a keeps serving while its neighbour is being added; b does not serve yet.
    assert facts.workers["w-a"].routable and facts.workers["w-a"].inflight == 3
    assert not facts.workers["w-b"].routable and facts.workers["w-b"].inflight == 5
    # By address alone, a's address would count b's requests and b's pending check.
    assert view.inflight_of(SHARED_GRPC, SHARED_HTTP) == 8
    assert SHARED_GRPC not in view.routable
    # Each cluster names its own worker at the shared address.
    assert view.hostnames_of([SHARED_GRPC], "a.prod.grpc") == ["w-a"]
    assert view.hostnames_of([SHARED_GRPC], "b.prod.grpc") == ["w-b"]
    forwarding = gateway_facts(view, workers, frozenset(), frozenset()).forwarding
    assert list(forwarding["a.prod.grpc"].routable_hostnames) == ["w-a"]

    healthy = parse_clusters(_shared_view_text("healthy"))
    assert gateway_facts(healthy, workers, frozenset(), frozenset()).workers["w-b"].routable


def test_a_sigkill_names_nobody_it_may_be_the_out_of_memory_killer() -> None:
    out = note_shared_exit(0, 3.0, "loading", "eu-shared-1", -9, "", frozenset({"loading"}))
    assert not out.isolate and out.note.failures == 1
    assert "killed by SIGKILL (the out-of-memory killer, or an operator)" in out.note.last_error


def test_a_moved_model_serves_only_once_its_own_clusters_route_to_it() -> None:
    """A packed worker moved to another track is healthy in its old track's clusters at once;
    it serves only when the new track's clusters (its workload's own) route to it."""
    view = parse_clusters(_shared_view_text("healthy"))
    moved = WorkerAddresses(
        "w-a", SHARED_GRPC, SHARED_HTTP, shared=True, clusters=frozenset({"a@v2.prod.grpc"})
    )
    assert not gateway_facts(view, [moved], frozenset(), frozenset()).workers["w-a"].routable
    placed = WorkerAddresses(
        "w-a", SHARED_GRPC, SHARED_HTTP, shared=True, clusters=frozenset({"a.prod.grpc"})
    )
    assert gateway_facts(view, [placed], frozenset(), frozenset()).workers["w-a"].routable


def _shared_workers(tmp_path: Path) -> SharedWorkers:
    """The agent's registry of shared workers, starting real processes, no standby pool."""
    config = AgentConfig(
        region="eu", controlplane="127.0.0.1:1", state_dir=tmp_path, standby_workers=0
    )
    return SharedWorkers(config, StandbyPool(0, tmp_path / "standby"), wake=lambda: None)


async def test_a_load_given_up_does_not_cancel_the_start_its_neighbours_wait_for(
    tmp_path: Path,
) -> None:
    """Two models placed in a shared worker that is still starting (a real process); the first
    one's worker is retired meanwhile (its load cancelled): the second still loads."""
    shared = _shared_workers(tmp_path)
    model = build_mlp(tmp_path / "m.pt", seed=0)
    config_json = model_config_json("v1", model, SIGNATURE)
    try:
        worker = shared.place("w1", "a", ("production", "a", "r1"))
        assert shared.place("w2", "b", ("production", "b", "r1")) is worker
        given_up = asyncio.create_task(shared.load(worker, config_json, "a"))
        kept = asyncio.create_task(shared.load(worker, config_json, "b"))
        await asyncio.sleep(0)  # both wait for the process to listen
        given_up.cancel()
        with pytest.raises(asyncio.CancelledError):
            await given_up
        await asyncio.wait_for(kept, 120)
        assert worker.starting is not None and not worker.starting.cancelled()
        assert worker.alive
    finally:
        await shared.stop()
    assert not shared.pids()


async def test_a_model_that_crashed_one_goes_alone_every_time_until_its_revision_changes(
    tmp_path: Path,
) -> None:
    shared = _shared_workers(tmp_path)
    try:
        first = shared.place("w1", "steady", ("production", "steady", "r1"))
        shared.isolate(("production", "crashy", "r1"), "crashed")
        # Every replica (and every later wake) of the culprit starts a shared worker of its own.
        alone = shared.place("w2", "crashy", ("production", "crashy", "r1"))
        again = shared.place("w3", "crashy", ("production", "crashy", "r1"))
        assert len({id(first), id(alone), id(again)}) == 3
        assert alone.isolated and again.isolated
        # Nobody joins an isolated one; a new revision of the model is packed again.
        assert shared.place("w4", "other", ("production", "other", "r1")) is first
        assert shared.place("w5", "crashy", ("production", "crashy", "r2")) is first
    finally:
        await shared.stop()
    assert not shared.pids()


async def test_one_index_call_says_which_models_of_a_shared_worker_serve(tmp_path: Path) -> None:
    """The agent's probe of packed models: one RepositoryIndex call on a real shared worker's
    control port names each model's state; a model the worker dropped is not serving, and a
    dead worker makes every model unreachable."""
    from meshline.inference import grpc_service_pb2 as oip
    from meshline.inference import grpc_service_pb2_grpc as oip_grpc
    from workers.agent.probes import shared_model_problems

    shared = _shared_workers(tmp_path)
    model = build_mlp(tmp_path / "m.pt", seed=0)
    config_json = model_config_json("v1", model, SIGNATURE)
    try:
        worker = shared.place("w1", "a", ("production", "a", "r1"))
        shared.place("w2", "b", ("production", "b", "r1"))
        await asyncio.wait_for(shared.load(worker, config_json, "a"), 120)
        await asyncio.wait_for(shared.load(worker, config_json, "b"), 120)
        assert await shared_model_problems(worker, ["a", "b"]) == {"a": "", "b": ""}

        assert worker.control is not None
        stub = oip_grpc.GRPCInferenceServiceStub(worker.control)
        await stub.RepositoryModelUnload(oip.RepositoryModelUnloadRequest(model_name="b"))
        problems = await shared_model_problems(worker, ["a", "b", "never-loaded"])
        assert problems["a"] == ""
        assert "model 'b' in shared worker" in problems["b"] and "UNAVAILABLE" in problems["b"]
        assert "'never-loaded'" in problems["never-loaded"]

        assert worker.process is not None
        worker.process.kill()
        await worker.process.wait()
        dead = await shared_model_problems(worker, ["a", "b"])
        assert all("unreachable" in p for p in dead.values()), dead
    finally:
        await shared.stop()
    assert not shared.pids()
