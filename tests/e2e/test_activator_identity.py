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

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from meshline.v1 import api_pb2, resources_pb2
from tests.e2e.conftest import deployment_yaml
from tests.harness.envoy_admin import read_clusters
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


def _eu(mesh: Mesh) -> resources_pb2.RegionDeploymentStatus:
    dep = mesh.deployment(NAME)
    return next(r for r in dep.status.regions if r.region == "eu")


def _at_zero(mesh: Mesh) -> bool:
    eu = _eu(mesh)
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
