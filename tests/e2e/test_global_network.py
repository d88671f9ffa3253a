"""The global network end to end: three regions, real Envoys and Torch workers.

eu-west (FR) and eu-central (DE) are in Europe, us-east (US) in North America. Every test
deploys its own deployment names and removes them, so tests do not depend on each other.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from meshline.inference import grpc_service_pb2_grpc as oip_grpc
from meshline.v1 import api_pb2
from tests.e2e.conftest import deployment_yaml
from tests.harness.envoy_admin import read_clusters
from tests.harness.load import ClientLoop, infer_request, served_by
from tests.harness.mesh import MESHLINE, Mesh, running_mesh
from tests.harness.peer_tls import client_context, issue_identity, mesh_ca, peer_request
from tests.harness.processes import wait_until
from workers.demo import build_mlp, build_slow_mlp

EU = ["eu-west", "eu-central"]
ALL = ["eu-west", "eu-central", "us-east"]
FACTS = {
    "eu-west": {"country": "FR", "continent": "EU"},
    "eu-central": {"country": "DE", "continent": "EU"},
    "us-east": {"country": "US", "continent": "NA"},
}
BATCH = np.random.default_rng(3).standard_normal((1, 784)).astype(np.float32)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with running_mesh(
        tmp_path_factory.mktemp("world"), regions=tuple(ALL), region_facts=FACTS
    ) as mesh:
        yield mesh


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("versions")
    return {f"v{i}": build_mlp(root / f"mlp-v{i}.pt", seed=i) for i in (1, 2, 3)}


def _delete(mesh: Mesh, name: str) -> None:
    mesh.deployments.DeleteDeployment(api_pb2.DeleteDeploymentRequest(name=name), timeout=10)


def _infer(
    gateway: str, deployment: str, metadata: tuple[tuple[str, str], ...] = ()
) -> tuple[str, dict[str, str]]:
    """(model version that answered, {region, worker} that served it)."""
    with grpc.insecure_channel(gateway) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        response, call = stub.ModelInfer.with_call(
            infer_request(deployment, BATCH),
            metadata=(("x-meshline-deployment", deployment), *metadata),
            timeout=10,
        )
    return response.model_version, served_by(call.trailing_metadata())


def _policies_yaml(text: str, policies: str) -> str:
    """Replace the location policy deployment_yaml writes with `policies` (a YAML list)."""
    head, _, _ = text.rpartition("  policies:\n")
    return head + "  policies:\n" + policies


def _standby_pids(mesh: Mesh, region: str) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-P", str(mesh.agents[region].pid), "-f", "workers.torch_worker.standby"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [int(p) for p in out.split()]


def test_eu_only_deployment_entering_in_the_us_is_served_in_the_eu(
    world: Mesh, versions: dict[str, Path], tmp_path: Path
) -> None:
    tmp = tmp_path / "client-certs"
    text = deployment_yaml("geo", {"v1": versions["v1"]}, "v1", EU)
    world.apply(_policies_yaml(text, "    - location: {continents: [EU]}\n"))
    try:
        status = world.wait_ready("geo").status
        assert sorted(status.placement) == sorted(EU)
        excluded = {e.region: e.reason for e in status.plan.excluded}
        assert "us-east" in excluded and "continents: [EU]" in excluded["us-east"]
        us = world.gateway("us-east")
        regions = Counter(_infer(us, "geo")[1]["region"] for _ in range(40))
        assert set(regions) <= set(EU) and sum(regions.values()) == 40
        # Where it entered comes in the initial metadata (the gateway's response headers), who
        # served it in the trailing metadata (the worker's), as the README says.
        with grpc.insecure_channel(us) as channel:
            _, call = oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer.with_call(
                infer_request("geo", BATCH),
                metadata=(("x-meshline-deployment", "geo"),),
                timeout=10,
            )
        assert dict(call.initial_metadata())["x-meshline-entry-region"] == "us-east"
        assert dict(call.trailing_metadata())["x-meshline-region"] in EU
        # The CLI enters wherever it is told, also outside the placement, and says where the
        # request was served.
        cli = subprocess.run(
            [
                *MESHLINE,
                *("infer", "geo", "--input", "input=0.5", "--region", "us-east"),
                *("--address", world.address, "-o", "json"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout)["region"] in EU
        # The same request entering in the EU is served where it entered.
        west = world.gateway("eu-west")
        assert {_infer(west, "geo")[1]["region"] for _ in range(10)} == {"eu-west"}
        # REST takes the same path; the answer says where it entered and where it was served.
        body = json.dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "datatype": "FP32",
                        "shape": [1, 784],
                        "data": BATCH.ravel().tolist(),
                    }
                ]
            }
        ).encode()
        request = urllib.request.Request(f"http://{us}/v2/models/geo/infer", data=body)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["x-meshline-entry-region"] == "us-east"
            assert response.headers["x-meshline-region"] in EU
        # A request that another gateway already forwarded is never forwarded again: the test
        # plays eu-west's gateway at us-east's peer listener, with a certificate of the mesh CA.
        ca = mesh_ca(world.state_dir / "controlplane")
        as_eu_west = client_context(ca.bundle_pem.decode(), issue_identity(ca, "eu-west"), tmp)
        looped = peer_request(
            world.region("us-east").status.peer_address,
            "/v2/models/geo/infer",
            {"x-meshline-hop": "eu-west", "x-meshline-version": "v1"},
            body,
            context=as_eu_west,
        )
        assert looped.status == 503, looped
        assert "never forwarded again" in str(looped.body.get("error"))
        # ... and a client that sends the hop marker to a public listener is refused, naming
        # the deployment.
        hop = (("x-meshline-hop", "eu-west"), ("x-meshline-version", "v1"))
        with pytest.raises(grpc.RpcError) as forged:
            _infer(us, "geo", hop)
        assert forged.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "forwarded-to-public-listener" in (forged.value.details() or "")
        assert "deployment 'geo'" in (forged.value.details() or "")
        request.add_header("x-meshline-hop", "eu-west")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 403
    finally:
        _delete(world, "geo")


def test_killing_every_worker_of_a_region_moves_traffic_without_failures(
    world: Mesh, versions: dict[str, Path]
) -> None:
    world.apply(deployment_yaml("fo", {"v1": versions["v1"]}, "v1", EU, replicas=2))
    try:
        world.wait_ready("fo", replicas=2)
        with ClientLoop(world.gateway("eu-west"), "fo", BATCH, concurrency=2) as loop:
            wait_until(lambda: loop.count() > 50, 30, "steady traffic")
            killed_at = time.monotonic()
            pids = world.worker_pids("eu-west", "fo")
            assert len(pids) == 2, pids
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            wait_until(
                lambda: loop.regions_since(killed_at)["eu-central"] > 20,
                30,
                "traffic to move to eu-central",
            )
            # The agent restarts the workers; traffic comes home once they are healthy again.
            home = time.monotonic() + 2
            wait_until(
                lambda: time.monotonic() > home and loop.regions_since(home)["eu-west"] > 20,
                90,
                "traffic to come back to eu-west",
            )
        assert loop.failures == []
    finally:
        _delete(world, "fo")


def test_split_pin_and_mirror(world: Mesh, versions: dict[str, Path]) -> None:
    text = deployment_yaml("ab", versions, "v1", ["eu-west"])
    world.apply(
        _policies_yaml(
            text,
            "    - location: {regions: [eu-west]}\n"
            "    - traffic:\n"
            "        split: [{version: v1, weight: 90}, {version: v2, weight: 10}]\n"
            "        mirror: {version: v3, percent: 50}\n",
        )
    )
    try:
        world.wait_ready("ab")
        gateway = world.gateway("eu-west")
        with grpc.insecure_channel(gateway) as channel:
            stub = oip_grpc.GRPCInferenceServiceStub(channel)
            request = infer_request("ab", BATCH)
            metadata = (("x-meshline-deployment", "ab"),)
            seen = Counter(
                stub.ModelInfer(request, metadata=metadata, timeout=10).model_version
                for _ in range(2000)
            )
            pinned = {
                stub.ModelInfer(
                    request, metadata=(*metadata, ("x-meshline-version", "v2")), timeout=10
                ).model_version
                for _ in range(30)
            }
            with pytest.raises(grpc.RpcError) as unknown:
                stub.ModelInfer(
                    request, metadata=(*metadata, ("x-meshline-version", "v9")), timeout=10
                )
        # Clients only ever see the split's versions; v3 is a mirror whose answers are dropped.
        assert set(seen) == {"v1", "v2"}, seen
        assert abs(seen["v2"] / 2000 - 0.10) <= 0.03, seen
        assert pinned == {"v2"}
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        assert "v9" in (unknown.value.details() or "")
        # The mirror worker really received copies (its own request counter).
        mirrored = _worker_requests(world, "eu-west", "ab", "v3")
        assert 700 <= mirrored <= 1300, mirrored
    finally:
        _delete(world, "ab")


def _worker_requests(mesh: Mesh, region: str, deployment: str, track: str) -> float:
    """Sum of the worker's own meshline_worker_requests_total, read from its /metrics."""
    admin = mesh.region(region).status.admin_address
    cluster = f"{deployment}.production@{track}~local.http"
    hosts = {address for name, address in read_clusters(admin) if name == cluster}
    assert hosts, f"no {cluster} hosts in {admin}/clusters"
    total = 0.0
    for host in hosts:
        with urllib.request.urlopen(f"http://{host}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("meshline_worker_requests_total{"):
                    total += float(line.rsplit(" ", 1)[1])
    return total


def test_ring_hash_keeps_a_session_on_one_worker(world: Mesh, versions: dict[str, Path]) -> None:
    text = deployment_yaml("sticky", {"v1": versions["v1"]}, "v1", ["eu-west"], replicas=3)
    world.apply(
        _policies_yaml(
            text,
            "    - location: {regions: [eu-west]}\n"
            "    - routing: {strategy: ring_hash, hash_header: x-user-id}\n",
        )
    )
    try:
        world.wait_ready("sticky", replicas=3)
        gateway = world.gateway("eu-west")
        placed: dict[str, set[str]] = {}
        for user in range(10):
            header = (("x-user-id", f"user-{user}"),)
            placed[f"user-{user}"] = {
                _infer(gateway, "sticky", header)[1]["worker"] for _ in range(8)
            }
        assert all(len(workers) == 1 for workers in placed.values()), placed
        assert len(set.union(*placed.values())) >= 2, placed
    finally:
        _delete(world, "sticky")


def test_saturated_region_offloads_and_takes_traffic_back(world: Mesh, tmp_path: Path) -> None:
    slow = {"v1": build_slow_mlp(tmp_path / "slow.pt", rounds=40)}
    text = deployment_yaml("busy", slow, "v1", EU)
    world.apply(
        _policies_yaml(
            text,
            "    - location: {regions: [eu-west, eu-central]}\n"
            "    - offload: {max_inflight_per_replica: 2, max_percent: 80}\n",
        )
    )
    try:
        world.wait_ready("busy")
        gateway = world.gateway("eu-west")
        for _ in range(3):  # TorchScript's first calls are slow: warm both regions up
            _infer(gateway, "busy")
            _infer(world.gateway("eu-central"), "busy")
        with ClientLoop(gateway, "busy", BATCH, concurrency=8) as loop:
            start = time.monotonic()
            wait_until(
                lambda: loop.regions_since(start)["eu-central"] > 10,
                30,
                "overflow to reach eu-central",
            )
        assert loop.failures == []
        # Light load: the pressure is gone and eu-west takes all of its traffic back.
        with ClientLoop(gateway, "busy", BATCH, concurrency=1) as light:

            def home() -> bool:
                recent = light.regions_since(time.monotonic() - 2)
                return recent["eu-west"] > 5 and recent["eu-central"] == 0

            wait_until(home, 30, "traffic to come back to eu-west")
        assert light.failures == []
    finally:
        _delete(world, "busy")


def test_a_lost_region_is_routed_around_without_failures(
    world: Mesh, versions: dict[str, Path]
) -> None:
    """Runs last in this module: it kills a whole region (and starts it again)."""
    text = deployment_yaml("lost", {"v1": versions["v1"]}, "v1", EU)
    world.apply(_policies_yaml(text, "    - location: {continents: [EU]}\n"))
    try:
        world.wait_ready("lost")
        # Steady state: us-east's Envoy has health-checked both EU gateways (through them).
        wait_until(
            lambda: (
                world.gateway_hosts("us-east", "lost.production.grpc")
                == {"gateway.eu-central": "healthy", "gateway.eu-west": "healthy"}
            ),
            30,
            "us-east to see both EU gateways healthy",
        )
        # From us-east both EU regions are equally far: eu-central comes first by name.
        # 8 clients: some calls sit queued in the dying region's workers, which answer them
        # CANCELLED as they stop; the gateways must replay those too.
        with ClientLoop(world.gateway("us-east"), "lost", BATCH, concurrency=8) as loop:
            wait_until(lambda: loop.regions_since(0)["eu-central"] > 30, 30, "traffic")
            killed_at = time.monotonic()
            standbys = _standby_pids(world, "eu-central")
            assert standbys, "the agent keeps a standby interpreter"
            # SIGKILL the agent: its Envoy, workers and standby die with it (parent-death signal).
            os.kill(world.agents["eu-central"].pid, signal.SIGKILL)
            wait_until(
                lambda: loop.regions_since(killed_at)["eu-west"] > 30,
                30,
                "traffic to move to eu-west",
            )
            after = time.monotonic() + 1
            wait_until(lambda: loop.count() > 0 and time.monotonic() > after + 2, 10, "time")
            assert loop.regions_since(after)["eu-central"] == 0
        wait_until(
            lambda: not any(Path(f"/proc/{pid}").exists() for pid in standbys),
            10,
            "the dead agent's standby interpreter to exit",
        )
        assert loop.failures == []
    finally:
        world.agents["eu-central"].stop()
        world.start_agent("eu-central", **FACTS["eu-central"])
        world.wait_agents()
        _delete(world, "lost")
