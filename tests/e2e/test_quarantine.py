"""One deployment whose config Envoy rejects must not freeze its regions' configuration.

The bad deployment is written straight into the control plane's store file, past the API's
validation (as an older meshline, a hand edit or a validation gap could have left it), while the
control plane is stopped; the real control plane and the real Envoys of both regions then take
it from there.
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import numpy as np
import torch

from controlplane.store import Store
from meshline.v1 import api_pb2, resources_pb2
from tests.e2e.conftest import deployment_yaml, local_torch
from tests.harness.load import ClientLoop, rest_infer
from tests.harness.mesh import Mesh
from tests.harness.processes import wait_until

ENVOY_TEXT = "Duration out-of-range"  # what Envoy says about the duration, naming no cluster


def _inject_bad_deployment(mesh: Mesh, name: str, model: str, replicas: int = 1) -> None:
    """A deployment whose health-check timeout no Envoy accepts, stored without the API.

    The store file has one user at a time: opening it beside the running control plane would
    run migrations and bump its boot epoch beneath it. So the control plane is stopped (the
    Envoys keep serving what they have), the file written, and the control plane started again.
    """
    deployment = resources_pb2.Deployment()
    deployment.metadata.name = name
    deployment.spec.environment = "production"
    deployment.spec.model = model
    deployment.spec.version = "v1"
    deployment.spec.replicas = replicas
    deployment.spec.policies.add().location.regions.append("eu")
    deployment.spec.policies.add().failover.health_check.timeout_s = 100_000_000_000
    mesh.controlplane.stop()
    try:
        with Store.open(mesh.state_dir / "controlplane" / "meshline.db") as store:
            store.apply([api_pb2.Resource(deployment=deployment)])
    finally:
        mesh.start_controlplane()
    mesh.wait_agents()


def _delete(mesh: Mesh, name: str) -> None:
    """Cleanup: gone already (the test failed before creating it) is fine."""
    try:
        mesh.deployments.DeleteDeployment(
            api_pb2.DeleteDeploymentRequest(name=name, environment="production"), timeout=10
        )
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise


def _failed_with_envoys_text(mesh: Mesh, name: str) -> bool:
    status = mesh.deployment(name).status
    return status.phase == "Failed" and ENVOY_TEXT in status.message


def _kept(mesh: Mesh, name: str, regions: tuple[str, ...] = ("eu",)) -> bool:
    message = mesh.deployment(name).status.message
    return all(
        f"{region}: kept at its last accepted form (version v1); the new spec was rejected"
        in message
        for region in regions
    )


def _forwards_to_a_healthy_gateway(mesh: Mesh, region: str, name: str) -> bool:
    """`region`'s Envoy routes `name` to a gateway it sees as healthy (its admin says so)."""
    clusters = (f"{name}.production.grpc", f"{name}.production.http")
    flags = [f for c in clusters for f in mesh.gateway_hosts(region, c).values()]
    return bool(flags) and all(f == "healthy" for f in flags)


def _rejections(mesh: Mesh) -> int:
    """NACKs the control plane logged so far (its log spans restarts)."""
    return mesh.controlplane.log().count("rejected type.googleapis.com/")


def test_rejected_deployment_is_quarantined_and_the_region_keeps_updating(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    try:
        _quarantined_and_the_region_keeps_updating(mesh, models)
    finally:
        for name in ("q-later", "q-bad", "q-good"):
            _delete(mesh, name)


def _quarantined_and_the_region_keeps_updating(mesh: Mesh, models: dict[str, Path]) -> None:
    batch = np.random.default_rng(3).standard_normal((3, 784)).astype(np.float32)
    expected = local_torch(models["v1"], torch.from_numpy(batch)).numpy()
    mesh.apply(deployment_yaml("q-good", models, "v1", ["eu"]))
    mesh.wait_ready("q-good")

    with ClientLoop(mesh.gateway("us"), "q-good", batch) as loop:
        wait_until(lambda: loop.count() > 10, 30, "answers from the good deployment")
        _inject_bad_deployment(mesh, "q-bad", "mlp-q-good")
        # (1) Failed, with Envoy's own words.
        wait_until(lambda: _failed_with_envoys_text(mesh, "q-bad"), 60, "q-bad Failed")

        # (2) A deployment applied afterwards reaches every gateway and serves.
        mesh.apply(deployment_yaml("q-later", models, "v1", ["eu"]))
        mesh.wait_ready("q-later", timeout_s=90)
        for region in ("eu", "us"):
            got = rest_infer(mesh.gateway(region), "q-later", batch)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        before = loop.count()
        wait_until(lambda: loop.count() > before + 10, 30, "more answers from q-good")

    # (3) The deployment that was there before kept serving and is Ready.
    assert loop.failures == []
    good = mesh.deployment("q-good").status
    assert good.phase == "Ready" and not any(r.nack_error for r in good.regions), good.message

    bad = mesh.deployment("q-bad").status
    assert bad.phase == "Failed"
    for region in ("eu", "us"):  # each gateway rejected it on its own, and left it out
        assert f"{region}: Envoy rejected clusters version" in bad.message, bad.message
        assert f"quarantined: left out of region {region}'s config" in bad.message
    assert ENVOY_TEXT in next(r for r in bad.regions if r.region == "eu").nack_error

    # A restarted control plane remembers the quarantine: no Envoy sees the bad config again.
    rejections = _rejections(mesh)
    assert rejections > 0
    mesh.restart_controlplane()
    mesh.wait_agents()
    mesh.wait_ready("q-good")
    mesh.wait_ready("q-later")
    assert _failed_with_envoys_text(mesh, "q-bad")
    assert _rejections(mesh) == rejections

    # (4) A bad update of a serving deployment (a setting Envoy refuses, and another replica
    # count): once its Envoys rejected it, it keeps serving at the form they accepted, from
    # its workers, and the status says so. (Between the push and the rejection, the update's
    # routes and endpoints, which Envoy takes, meet the old clusters: see the limits in
    # docs/architecture.md.)
    with ClientLoop(mesh.gateway("us"), "q-good", batch) as loop:
        wait_until(lambda: loop.count() > 10, 30, "answers from the good deployment")
        _inject_bad_deployment(mesh, "q-good", "mlp-q-good", replicas=2)
        # Each gateway rejects the update on its own; the loop enters at us, which forwards to
        # eu: from the moment both keep the accepted form and us's Envoy has it back (the
        # update's endpoints, taken meanwhile, met the old clusters), nothing may fail.
        wait_until(
            lambda: _kept(mesh, "q-good", ("eu", "us")), 60, "q-good kept at its accepted form"
        )
        wait_until(
            lambda: _forwards_to_a_healthy_gateway(mesh, "us", "q-good"),
            30,
            "us forwarding q-good to a healthy gateway again",
        )
        since = time.monotonic()
        wait_until(
            lambda: sum(a.done > since for a in loop.answers) > 20, 30, "more answers from q-good"
        )
        for region in ("eu", "us"):
            got = rest_infer(mesh.gateway(region), "q-good", batch)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert [t for t in loop.failed_at if t > since] == [], loop.failures[-3:]
    kept = mesh.deployment("q-good").status
    assert kept.phase == "Failed" and ENVOY_TEXT in kept.message, kept.message
    assert "left out" not in kept.message
