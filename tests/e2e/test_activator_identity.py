"""The activator asks for the mesh identity: only a gateway of the mesh (its region's
certificate, mTLS) can have a request held and a cold deployment woken.

Real control plane, one region (eu: agent, Envoy, Torch worker). A deployment scaled to zero is
listed behind the activator in eu's gateway, whose health checks of the activator pass (mTLS
with its SDS certificate, checking the control plane's identity). A client that calls the
activator straight, in plain text, by TLS without a certificate, or with another CA's
certificate, gets no connection, and the region stays at zero workers. A certificate of the
mesh naming eu is held and wakes it, so the same observations would have seen a wake.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch

from meshline.inference import grpc_service_pb2_grpc as oip_grpc
from meshline.v1 import api_pb2, resources_pb2
from tests.e2e.conftest import deployment_yaml, local_torch
from tests.harness.envoy_admin import read_clusters
from tests.harness.load import infer_request, output_array, rest_infer
from tests.harness.mesh import Mesh, running_mesh
from tests.harness.peer_tls import (
    Identity,
    client_context,
    issue_identity,
    mesh_ca,
    new_ca,
    peer_request,
)
from tests.harness.processes import wait_until
from workers.demo import build_mlp

NAME = "sleepy"
SCALE_TO_ZERO = "{min_replicas: 0, max_replicas: 1, scale_to_zero_after: 2}"
HEADERS = {
    "x-meshline-gateway": "eu",
    "x-meshline-deployment": NAME,
    "x-meshline-environment": "production",
    "x-meshline-version": "v1",
}
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with running_mesh(tmp_path_factory.mktemp("mesh"), regions=("eu",)) as m:
        yield m


def _eu(mesh: Mesh, name: str = NAME) -> resources_pb2.RegionDeploymentStatus:
    dep = mesh.deployment(name)
    return next(r for r in dep.status.regions if r.region == "eu")


def _at_zero(mesh: Mesh, name: str = NAME) -> bool:
    eu = _eu(mesh, name)
    return eu.scaled_to_zero and eu.current_replicas == 0 and eu.desired_replicas == 0


def _activator(mesh: Mesh) -> dict[str, str]:
    """The activator's address in eu's gateway per protocol ("grpc", "http"), once Envoy's
    health checks of it pass (mTLS: the gateway's certificate, the control plane's identity)."""
    found: dict[str, str] = {}

    def listed_and_healthy() -> bool:
        hosts = read_clusters(mesh.region("eu").status.admin_address)
        for protocol in ("grpc", "http"):
            for (cluster, address), stats in hosts.items():
                if cluster == f"{NAME}.production.{protocol}" and (
                    stats.get("hostname") == "activator" and stats.get("health_flags") == "healthy"
                ):
                    found[protocol] = address
        return set(found) == {"grpc", "http"}

    wait_until(listed_and_healthy, 30, "the activator listed and healthy in eu's gateway")
    return found


def _grpc_hold(
    address: str, trusted: bytes | None, identity: Identity | None, timeout_s: float = 10
) -> grpc.RpcError:
    """A ModelInfer straight to the activator (`trusted` None: plain text)."""
    if trusted is None:
        channel = grpc.insecure_channel(address)
    else:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=trusted,
            private_key=identity.key_pem.encode() if identity else None,
            certificate_chain=identity.chain_pem.encode() if identity else None,
        )
        channel = grpc.secure_channel(address, credentials)
    with channel:
        call = channel.unary_unary(MODEL_INFER)
        with pytest.raises(grpc.RpcError) as caught:
            call(b"\x0a\x06sleepy", metadata=tuple(HEADERS.items()), timeout=timeout_s)
    return caught.value


def test_only_a_mesh_certificate_wakes_a_deployment_through_the_activator(
    mesh: Mesh, tmp_path: Path
) -> None:
    model = build_mlp(tmp_path / "mlp.pt", seed=0)
    mesh.apply(deployment_yaml(NAME, {"v1": model}, "v1", ["eu"], scaling=SCALE_TO_ZERO))
    try:
        mesh.wait_ready(NAME)
        wait_until(lambda: _at_zero(mesh), 90, f"{NAME} to scale to zero in eu")
        wait_until(lambda: not mesh.worker_pids("eu", NAME), 30, "its worker to exit")
        activator = _activator(mesh)
        ca = mesh_ca(mesh.state_dir / "controlplane")
        trusted = ca.bundle_pem
        stranger = issue_identity(new_ca(), "eu")
        starts = _eu(mesh).cold_starts

        # gRPC: plain text, TLS without a certificate, another CA's certificate naming eu.
        for who, (root, identity) in {
            "plain text": (None, None),
            "no certificate": (trusted, None),
            "another CA's certificate": (trusted, stranger),
        }.items():
            error = _grpc_hold(activator["grpc"], root, identity)
            assert error.code() == grpc.StatusCode.UNAVAILABLE, (who, error)
            trailers = dict(error.trailing_metadata() or ())
            assert "x-meshline-activator" not in trailers and "x-envoy-overloaded" not in (
                trailers
            ), (who, trailers)
        # REST: the same three.
        path = f"/v2/models/{NAME}/infer"
        for who, context in {
            "plain text": None,
            "no certificate": client_context(trusted.decode(), None, tmp_path / "tls"),
            "another CA's certificate": client_context(
                trusted.decode(), stranger, tmp_path / "tls"
            ),
        }.items():
            answer = peer_request(activator["http"], path, HEADERS, b"{}", context=context)
            assert answer.refused, (who, answer)

        # Nothing held, nothing woke: the region is at zero, with no worker process.
        assert _at_zero(mesh), _eu(mesh)
        assert _eu(mesh).cold_starts == starts
        assert mesh.worker_pids("eu", NAME) == []
        assert f'meshline_activator_held_requests{{deployment="{NAME}"' not in mesh.metrics()

        # A certificate of the mesh naming eu (what eu's gateway shows) is held, wakes the
        # region and is told to retry once eu's gateway routes to the new worker.
        member = issue_identity(ca, "eu")
        error = _grpc_hold(activator["grpc"], trusted, member, timeout_s=60)
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error
        assert ("x-meshline-activator", "retry") in tuple(error.trailing_metadata() or ())
        wait_until(lambda: _eu(mesh).cold_starts == starts + 1, 30, "the cold start recorded")
        assert mesh.worker_pids("eu", NAME)
    finally:
        mesh.deployments.DeleteDeployment(api_pb2.DeleteDeploymentRequest(name=NAME), timeout=10)


def _grpc_infer(gateway: str, name: str, batch: np.ndarray) -> np.ndarray:
    with grpc.insecure_channel(gateway) as channel:
        response = oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            infer_request(name, batch), metadata=(("x-meshline-deployment", name),), timeout=60
        )
    return output_array(response)


def test_large_first_requests_are_replayed_whole_after_the_cold_start(
    mesh: Mesh, tmp_path: Path
) -> None:
    """The activator reads no body: a request of nearly 1 MiB (Envoy's buffer for a replay)
    is held, answered "retry" with most of its body unread, and Envoy replays its own copy to
    the worker, over REST and gRPC at once."""
    name = "sleepy-large"
    model = build_mlp(tmp_path / "mlp.pt", seed=1)
    mesh.apply(deployment_yaml(name, {"v1": model}, "v1", ["eu"], scaling=SCALE_TO_ZERO))
    try:
        mesh.wait_ready(name)
        wait_until(lambda: _at_zero(mesh, name), 90, f"{name} to scale to zero in eu")
        wait_until(lambda: not mesh.worker_pids("eu", name), 30, "its worker to exit")
        starts = _eu(mesh, name).cold_starts
        rng = np.random.default_rng(5)
        # About 0.9 MB each: JSON text for REST (~21 bytes a number), raw FP32 for gRPC.
        batches = {
            "rest": rng.standard_normal((54, 784)).astype(np.float32),
            "grpc": rng.standard_normal((280, 784)).astype(np.float32),
        }
        gateway = mesh.gateway("eu")
        calls: dict[str, Callable[[], np.ndarray]] = {
            "rest": lambda: rest_infer(gateway, name, batches["rest"], timeout_s=60),
            "grpc": lambda: _grpc_infer(gateway, name, batches["grpc"]),
        }
        answers: dict[str, np.ndarray | Exception] = {}

        def call(protocol: str) -> None:
            try:
                answers[protocol] = calls[protocol]()
            except Exception as exc:  # the test's failure, with its text
                answers[protocol] = exc

        threads = [threading.Thread(target=call, args=(p,)) for p in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
        for protocol, batch in batches.items():
            answer = answers.get(protocol)
            assert isinstance(answer, np.ndarray), (protocol, answer, mesh.logs())
            expected = local_torch(model, torch.from_numpy(batch)).numpy()
            np.testing.assert_allclose(answer, expected, rtol=1e-5, atol=1e-5)
        assert _eu(mesh, name).cold_starts == starts + 1  # one wake served both
    finally:
        mesh.deployments.DeleteDeployment(api_pb2.DeleteDeploymentRequest(name=name), timeout=10)
