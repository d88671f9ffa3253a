"""A mesh whose region eu's gateway speaks incremental xDS (`meshline agent --xds-protocol
delta`) beside region us's state-of-the-world one: deployments are added, updated and
removed through it, status and quarantine read its answers as they read state of the world
(a NACK shows Envoy's text), and it keeps serving across a control-plane restart.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.e2e.conftest import deployment_yaml, local_torch
from tests.e2e.test_quarantine import (
    ENVOY_TEXT,
    _delete,
    _failed_with_envoys_text,
    _inject_bad_deployment,
)
from tests.harness.load import ClientLoop, rest_infer
from tests.harness.mesh import Mesh, running_mesh
from tests.harness.processes import wait_until

DELTA, SOTW = "eu", "us"
CDS_REJECTED = "cluster_manager.cds.update_rejected"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    facts = {DELTA: {"flags": ["--xds-protocol", "delta"]}}
    with running_mesh(tmp_path_factory.mktemp("mesh"), region_facts=facts) as m:
        yield m


def _admin_json(mesh: Mesh, region: str, path: str) -> object:
    admin = mesh.region(region).status.admin_address
    with urllib.request.urlopen(f"http://{admin}{path}", timeout=5) as reply:
        return json.loads(reply.read())


def _ads_api_type(mesh: Mesh, region: str) -> str:
    dump = _admin_json(mesh, region, "/config_dump")
    (bootstrap,) = [
        c["bootstrap"]
        for c in dump["configs"]  # type: ignore[index]
        if c["@type"].endswith(".BootstrapConfigDump")
    ]
    return str(bootstrap["dynamic_resources"]["ads_config"]["api_type"])


def _counter(mesh: Mesh, region: str, name: str) -> int:
    stats = _admin_json(mesh, region, f"/stats?format=json&filter=^{name}$")
    return int(next(s["value"] for s in stats["stats"] if s["name"] == name))  # type: ignore[index]


def _not_found(mesh: Mesh, region: str, name: str, batch: np.ndarray) -> bool:
    try:
        rest_infer(mesh.gateway(region), name, batch, timeout_s=5)
    except urllib.error.HTTPError as exc:
        return exc.code == 404
    return False


def test_a_deployment_is_added_updated_and_removed_through_a_delta_gateway(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    batch = np.random.default_rng(5).standard_normal((2, 784)).astype(np.float32)
    name = "d-serve"
    try:
        mesh.apply(deployment_yaml(name, models, "v1", [DELTA, SOTW]))
        mesh.wait_ready(name)  # each region's Envoy ACKed it: both are up
        assert _ads_api_type(mesh, DELTA) == "DELTA_GRPC"
        assert _ads_api_type(mesh, SOTW) == "GRPC"
        v1 = local_torch(models["v1"], torch.from_numpy(batch)).numpy()
        for region in (DELTA, SOTW):
            got = rest_infer(mesh.gateway(region), name, batch)
            np.testing.assert_allclose(got, v1, rtol=1e-5, atol=1e-6)

        # An update (another version: new clusters, routes moved, old ones removed) while a
        # client calls through the delta gateway: every call answered.
        v2 = local_torch(models["v2"], torch.from_numpy(batch)).numpy()
        with ClientLoop(mesh.gateway(DELTA), name, batch) as loop:
            wait_until(lambda: loop.count() > 5, 30, "answers through the delta gateway")
            mesh.apply(deployment_yaml(name, models, "v2", [DELTA, SOTW]))

            def serves_v2() -> bool:
                got = rest_infer(mesh.gateway(DELTA), name, batch)
                return bool(np.allclose(got, v2, rtol=1e-5, atol=1e-6))

            wait_until(serves_v2, 90, "v2 through the delta gateway")
            mesh.wait_ready(name)
            before = loop.count()
            wait_until(lambda: loop.count() > before + 5, 30, "more answers")
        assert loop.failures == []

        # A control-plane restart: the delta gateway reconnects with what it has and serves on.
        mesh.restart_controlplane()
        mesh.wait_agents()
        mesh.wait_ready(name)
        np.testing.assert_allclose(
            rest_infer(mesh.gateway(DELTA), name, batch), v2, rtol=1e-5, atol=1e-6
        )
    finally:
        _delete(mesh, name)
    wait_until(lambda: _not_found(mesh, DELTA, name, batch), 60, "the delta gateway forgets it")


def test_a_rejected_deployment_is_quarantined_by_a_delta_gateway_too(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    """Its NACK reaches status with Envoy's own text, the quarantine leaves it out, and what
    is applied afterwards still reaches the delta gateway; the rejected clusters were sent to
    it once."""
    batch = np.random.default_rng(6).standard_normal((2, 784)).astype(np.float32)
    expected = local_torch(models["v1"], torch.from_numpy(batch)).numpy()
    try:
        mesh.apply(deployment_yaml("dq-good", models, "v1", [DELTA]))
        mesh.wait_ready("dq-good")
        rejected_before = _counter(mesh, DELTA, CDS_REJECTED)
        _inject_bad_deployment(mesh, "dq-bad", "mlp-dq-good")  # located in eu (the delta one)

        def rejected_and_quarantined_by_the_delta_gateway() -> bool:
            message = mesh.deployment("dq-bad").status.message
            return (
                _failed_with_envoys_text(mesh, "dq-bad")
                and f"{DELTA}: Envoy rejected clusters version" in message
                and f"quarantined: left out of region {DELTA}'s config" in message
            )

        wait_until(rejected_and_quarantined_by_the_delta_gateway, 90, "dq-bad quarantined in eu")
        bad = mesh.deployment("dq-bad").status
        assert ENVOY_TEXT in next(r for r in bad.regions if r.region == DELTA).nack_error

        mesh.apply(deployment_yaml("dq-later", models, "v1", [DELTA]))
        mesh.wait_ready("dq-later", timeout_s=90)
        for region in (DELTA, SOTW):
            got = rest_infer(mesh.gateway(region), "dq-later", batch)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        good = mesh.deployment("dq-good").status
        assert good.phase == "Ready" and not any(r.nack_error for r in good.regions)
        assert _counter(mesh, DELTA, CDS_REJECTED) == rejected_before + 1
    finally:
        for name in ("dq-later", "dq-bad", "dq-good"):
            _delete(mesh, name)
