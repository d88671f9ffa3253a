"""Serverless end to end: scale to zero and back through the activator, cold-start timeouts,
the autoscaler under a load step, cold-start-aware routing, deactivate and activate.

Real control plane, Envoy gateways and Torch workers (module mesh: regions eu and us).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import torch

from meshline.inference import grpc_service_pb2_grpc as oip_grpc
from meshline.v1 import api_pb2, resources_pb2
from tests.e2e.conftest import deployment_yaml, local_torch
from tests.harness.load import ClientLoop, infer_request, output_array, rest_infer, served_by
from tests.harness.mesh import Mesh
from tests.harness.processes import wait_until
from workers.demo import build_slow_mlp

# Idle 2 s → zero; a held request waits up to 30 s for its worker.
SCALE_TO_ZERO = "{min_replicas: 0, max_replicas: 2, scale_to_zero_after: 2}"
# Status of a region whose last wake crash-looped, naming that wake's worker.
FAILED_WAKE = re.compile(r"the last cold start failed: worker ([\w-]+)")


def _batch(rows: int = 2, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, 784)).astype(np.float32)


def _grpc_call(
    gateway: str, deployment: str, batch: np.ndarray, timeout: float = 30
) -> tuple[np.ndarray, dict[str, str]]:
    with grpc.insecure_channel(gateway) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        response, call = stub.ModelInfer.with_call(
            infer_request(deployment, batch),
            metadata=(("x-meshline-deployment", deployment),),
            timeout=timeout,
        )
    return output_array(response), served_by(call.trailing_metadata())


def _region(dep: resources_pb2.Deployment, name: str) -> resources_pb2.RegionDeploymentStatus:
    return next(r for r in dep.status.regions if r.region == name)


def _wait_scaled_to_zero(mesh: Mesh, name: str, region: str, timeout_s: float = 60) -> None:
    def at_zero() -> bool:
        dep = mesh.deployment(name)
        r = _region(dep, region)
        return dep.status.phase == "Ready" and r.scaled_to_zero and r.current_replicas == 0

    wait_until(at_zero, timeout_s, f"{name} to scale to zero in {region}")


def _hosts(mesh: Mesh, name: str) -> set[str]:
    return set(mesh.gateway_hosts("eu", f"{name}.production.grpc"))


def _delete(mesh: Mesh, name: str) -> None:
    mesh.deployments.DeleteDeployment(api_pb2.DeleteDeploymentRequest(name=name), timeout=10)


def test_a_new_deployment_runs_nothing_until_a_burst_of_first_requests_which_all_succeed(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    name = "cold"
    mesh.apply(deployment_yaml(name, models, "v1", ["eu"], scaling=SCALE_TO_ZERO))
    try:
        # Ready at zero: the gateway lists only the activator, and no worker ever started.
        _wait_scaled_to_zero(mesh, name, "eu")
        wait_until(lambda: _hosts(mesh, name) == {"activator"}, 10, "only the activator listed")
        assert mesh.worker_pids("eu", name) == []
        assert _region(mesh.deployment(name), "eu").desired_replicas == 0

        batch = _batch()
        expected = local_torch(models["v1"], torch.from_numpy(batch)).numpy()
        gateway = mesh.gateway("eu")
        results: list[object] = []
        lock = threading.Lock()

        def first_request(i: int) -> None:
            try:
                if i % 4 == 3:
                    out = rest_infer(gateway, name, batch)
                else:
                    out, _ = _grpc_call(gateway, name, batch)
                with lock:
                    results.append(out)
            except Exception as exc:  # every failure is the test's failure, with its text
                with lock:
                    results.append(exc)

        threads = [threading.Thread(target=first_request, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        errors = [r for r in results if isinstance(r, Exception)]
        assert not errors, f"cold start answered errors: {errors}\n{mesh.logs()}"
        assert len(results) == 8
        for out in results:
            np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)

        dep = mesh.deployment(name)
        eu = _region(dep, "eu")
        assert eu.cold_starts >= 1
        assert 0 < eu.last_cold_start_s < 30
        metrics = mesh.metrics()
        starts = re.search(
            rf'meshline_cold_starts_total{{deployment="{name}",environment="production",'
            rf'region="eu"}} (\d+)',
            metrics,
        )
        assert starts is not None and int(starts.group(1)) >= 1, metrics
        assert f'meshline_cold_start_seconds_count{{deployment="{name}"' in metrics
        # The passes the cold start waited for are on the page too.
        rebuilds = re.search(r"^meshline_controlplane_rebuild_seconds_count (\S+)", metrics, re.M)
        assert rebuilds is not None and float(rebuilds.group(1)) >= 1, metrics
        # The cold start's passes were woken by the store (the apply), the agent's reports
        # and Envoy's answers, and each is counted under its source.
        for source in ("store", "agent", "envoy"):
            woke = re.search(
                rf'^meshline_controlplane_rebuild_triggers_total{{source="{source}"}} (\S+)',
                metrics,
                re.M,
            )
            assert woke is not None and float(woke.group(1)) >= 1, (source, metrics)

        # Idle again: back to zero, and it stays there. The retired worker's counters, still
        # in Envoy for a moment, once read as new traffic and woke the region at once.
        _wait_scaled_to_zero(mesh, name, "eu")
        settled = _region(mesh.deployment(name), "eu").cold_starts
        time.sleep(2)  # several agent reports and autoscaler rounds, no request
        again = _region(mesh.deployment(name), "eu")
        assert (again.scaled_to_zero, again.current_replicas, again.desired_replicas) == (
            True,
            0,
            0,
        ), mesh.logs()
        assert again.cold_starts == settled
    finally:
        _delete(mesh, name)


def test_cold_start_beyond_its_timeout_is_a_clear_unavailable_then_the_next_succeeds(
    mesh: Mesh, tmp_path: Path
) -> None:
    name = "slowcold"
    # A standby interpreter (torch already imported) starts the demo MLP in well under 0.2 s
    # on a fast machine. This model's start-up check runs six forward passes (one to prove the
    # signature, five to time it; 0.25-0.35 s each on a 2-core VM), so its worker needs >1 s.
    models = {"v1": build_slow_mlp(tmp_path / "slow-start.pt", seed=0, rounds=1000)}
    scaling = "{min_replicas: 0, max_replicas: 1, scale_to_zero_after: 1, cold_start_timeout: 0.2}"
    mesh.apply(deployment_yaml(name, models, "v1", ["eu"], scaling=scaling))
    try:
        _wait_scaled_to_zero(mesh, name, "eu")
        gateway = mesh.gateway("eu")
        batch = _batch()
        try:
            _grpc_call(gateway, name, batch)
            raise AssertionError("a cold start longer than cold_start_timeout succeeded")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
            assert "cold_start_timeout 0.2 s" in exc.details(), exc.details()
            assert f"deployment '{name}'" in exc.details()
            assert "region 'eu'" in exc.details()
        # It keeps waking: once warm, the next request is served. (A longer idle time, which
        # restarts nothing, keeps it from idling back to zero before that request.)
        mesh.apply(
            deployment_yaml(
                name, models, "v1", ["eu"], scaling=scaling.replace("after: 1", "after: 60")
            )
        )
        mesh.wait_ready(name, replicas=1)
        out, _ = _grpc_call(gateway, name, batch)
        expected = local_torch(models["v1"], torch.from_numpy(batch)).numpy()
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    finally:
        _delete(mesh, name)


def test_a_broken_scale_to_zero_deployment_stays_failed_back_at_zero_until_it_changes(
    mesh: Mesh, models: dict[str, Path], tmp_path: Path
) -> None:
    """A wake whose worker crash-loops: the region goes back to zero, the worker is gone, and
    the deployment stays Failed with the worker's error (it showed Ready, scaled to zero); a
    request still wakes it (a new worker, which crash-loops too) and is told a user must act,
    and a fixed version makes it Ready. (initial_replicas 1: a worker starts at creation, so
    the crash loop shows before anyone calls.)"""
    name = "coldcrash"
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a TorchScript archive")
    versions = {"broken": broken, "v1": models["v1"]}
    scaling = (
        "{min_replicas: 0, max_replicas: 1, initial_replicas: 1, scale_to_zero_after: 1, "
        "cold_start_timeout: 3}"
    )
    mesh.apply(deployment_yaml(name, versions, "broken", ["eu"], scaling=scaling))
    try:
        wait_until(
            lambda: mesh.deployment(name).status.phase == "Failed", 60, "its start to crash-loop"
        )
        phases: set[str] = set()
        failed_workers: list[str] = []  # the worker each status read names as the failed wake's

        def back_at_zero() -> bool:
            dep = mesh.deployment(name)
            phases.add(dep.status.phase)
            if found := FAILED_WAKE.search(dep.status.message):
                failed_workers.append(found[1])
            eu = _region(dep, "eu")
            return eu.scaled_to_zero and (eu.desired_replicas, eu.current_replicas) == (0, 0)

        # (Longer than the autoscaler's 60 s never-served grace: without the crash loop ending
        # it, the region comes back to zero too, and the phase is what this test checks.)
        wait_until(back_at_zero, 90, f"{name} back at zero in eu")
        dep = mesh.deployment(name)
        assert dep.status.phase == "Failed" and phases == {"Failed"}, (phases, dep.status)
        assert "eu: the last cold start failed: worker " in dep.status.message, dep.status
        assert "exited with code 1" in dep.status.message
        named = FAILED_WAKE.search(dep.status.message)
        assert named is not None, dep.status.message
        first = named[1]

        # A request still wakes it (something outside the spec may have been fixed); this
        # wake fails too, so the request times out, told that a user must act and why, and the
        # deployment stays Failed.
        try:
            _grpc_call(mesh.gateway("eu"), name, _batch())
            raise AssertionError("a deployment whose model cannot load answered")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
            details = exc.details() or ""
        assert "a user must act" in details, details
        assert "the last cold start failed: worker " in details, details
        assert "exited with code 1" in details, details
        # The wake happened: a new worker started and crash-looped (its failure replaced the
        # first one's), and eu went back to zero after it.
        wait_until(
            lambda: back_at_zero() and failed_workers[-1] != first,
            90,
            f"{name} back at zero in eu after a second wake whose new worker failed",
        )
        assert phases == {"Failed"}, phases

        # A changed spec (a version that loads) is tried afresh: no longer Failed. It is at zero
        # (Ready): the call below is its cold start, given time for a worker's start on a busy
        # machine (3 s was for the broken wakes above to answer soon).
        fixed = scaling.replace("cold_start_timeout: 3", "cold_start_timeout: 60")
        mesh.apply(deployment_yaml(name, versions, "v1", ["eu"], scaling=fixed))
        mesh.wait_ready(name)
        out, _ = _grpc_call(mesh.gateway("eu"), name, _batch())
        expected = local_torch(models["v1"], torch.from_numpy(_batch())).numpy()
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    finally:
        _delete(mesh, name)


def test_a_load_step_grows_replicas_and_they_shrink_after_it_without_failures(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    name = "elastic"
    # One request in flight per worker is the target: 6 closed-loop clients want 3 workers.
    scaling = "{min_replicas: 1, max_replicas: 3, target_concurrency: 1, stable_window: 3}"
    mesh.apply(deployment_yaml(name, models, "v1", ["eu"], scaling=scaling))
    try:
        mesh.wait_ready(name, replicas=1)
        gateway = mesh.gateway("eu")
        with ClientLoop(gateway, name, _batch(), concurrency=6) as load:
            wait_until(
                lambda: _region(mesh.deployment(name), "eu").healthy_endpoints >= 2,
                60,
                "a second worker serving under load",
            )
            grown = _region(mesh.deployment(name), "eu")
            wait_until(lambda: load.count() > 200, 30, "requests flowing")
        assert load.failures == [], load.failures[:5]
        assert grown.desired_replicas >= 2
        # Load gone: back to min_replicas, the extra workers drained, not cut off.
        wait_until(
            lambda: _region(mesh.deployment(name), "eu").current_replicas == 1,
            60,
            "the extra workers to go after the load",
        )
        assert _region(mesh.deployment(name), "eu").desired_replicas == 1
        with ClientLoop(gateway, name, _batch(), concurrency=1) as after:
            wait_until(lambda: after.count() > 20, 30, "requests after shrinking")
        assert after.failures == []
    finally:
        _delete(mesh, name)


def test_a_cold_region_sends_traffic_to_a_warm_one_while_it_wakes(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    name = "nearby"
    mesh.apply(deployment_yaml(name, models, "v1", ["eu", "us"], scaling=SCALE_TO_ZERO))
    try:
        # Nothing runs in either region before the first request.
        _wait_scaled_to_zero(mesh, name, "eu", timeout_s=90)
        _wait_scaled_to_zero(mesh, name, "us")
        batch = _batch()
        # Wake us only (a request entering there waits for its own cold start).
        _, by = _grpc_call(mesh.gateway("us"), name, batch)
        assert by.get("region") == "us"
        wait_until(lambda: mesh.deployment(name).status.phase == "Ready", 30, "us warm")
        assert _region(mesh.deployment(name), "eu").scaled_to_zero
        # eu is cold, us is warm: the first request entering eu is served in us at once...
        _, by = _grpc_call(mesh.gateway("eu"), name, batch)
        assert by.get("region") == "us", by
        # ...and the demand it saw wakes eu, which then serves its own traffic.
        wait_until(
            lambda: _region(mesh.deployment(name), "eu").healthy_endpoints >= 1,
            60,
            "eu woken by traffic served next door",
        )

        def served_in_eu() -> bool:
            return _grpc_call(mesh.gateway("eu"), name, batch)[1].get("region") == "eu"

        wait_until(served_in_eu, 30, "eu serving its own requests")
    finally:
        _delete(mesh, name)


def test_deactivate_refuses_requests_stops_workers_and_activate_restores_them(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    name = "pausable"
    mesh.apply(deployment_yaml(name, models, "v1", ["eu"], replicas=1))
    try:
        before = mesh.wait_ready(name, replicas=1)
        gateway = mesh.gateway("eu")
        reply = mesh.set_active(name, active=False)
        assert reply.changed and reply.deployment.spec.deactivated

        def deactivated() -> bool:
            return mesh.deployment(name).status.phase == "Deactivated"

        wait_until(deactivated, 60, f"{name} Deactivated")
        assert _region(mesh.deployment(name), "eu").current_replicas == 0
        try:
            _grpc_call(gateway, name, _batch())
            raise AssertionError("a deactivated deployment answered")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION, exc
            assert f"deployment '{name}' in environment 'production' is deactivated" in (
                exc.details() or ""
            )
        try:
            rest_infer(gateway, name, _batch())
            raise AssertionError("a deactivated deployment answered over REST")
        except urllib.error.HTTPError as exc:
            assert exc.code == 403
            assert "is deactivated" in json.loads(exc.read())["error"]
        assert not mesh.set_active(name, active=False).changed  # idempotent

        assert mesh.set_active(name, active=True).changed
        after = mesh.wait_ready(name, replicas=1)
        # Everything but the flag is as it was.
        assert after.spec == before.spec
        out, _ = _grpc_call(gateway, name, _batch())
        expected = local_torch(models["v1"], torch.from_numpy(_batch())).numpy()
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    finally:
        _delete(mesh, name)


def test_deactivating_an_unknown_deployment_is_not_found(mesh: Mesh) -> None:
    try:
        mesh.set_active("no-such-deployment", active=False)
        raise AssertionError("deactivated a deployment that does not exist")
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
        assert "no-such-deployment" in (exc.details() or "")
