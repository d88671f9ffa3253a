"""Edge TLS for clients, end to end: a real control plane, real Envoys and a Torch worker.

Region `eu` (serves the deployment) asks the control plane for a certificate
(`--tls-from-mesh-ca`: signed by its edge CA, `edge-ca.crt`, never the mesh CA), renewed every
few seconds (`--gateway-cert-ttl`); region `us` (only forwards) serves the user's own
certificate from files (`--tls-cert/--tls-key`) signed by a CA of the user's, no part of the
mesh. What a client gets is read from the gateway itself: the certificate a TLS handshake
returns. The control plane is also known by a DNS name (`--advertise-host`), which no region's
agent may have certified.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from meshline.edge_tls import EDGE_CA_CERT_FILE
from meshline.inference import grpc_service_pb2_grpc as oip_grpc
from tests.e2e.conftest import deployment_yaml, local_torch
from tests.harness.load import ClientLoop, infer_request, output_array
from tests.harness.mesh import MESHLINE, Mesh, running_mesh
from tests.harness.processes import wait_until
from tests.harness.triton_client import triton_infer
from tests.harness.user_certificates import UserCA, UserPair, served_certificate
from workers.demo import build_mlp

MESH_CA, FILES = "eu", "us"
DEPLOYMENT = "edge"
# A new edge (and peer) certificate every ~6 s: the rotation test sees several in seconds.
CERT_TTL = "9s"
NAMES = ("127.0.0.1", "localhost")
# A name of the control plane only (in its certificate; agents are told the first one).
CONTROLPLANE_NAME = "controlplane.meshline.test"
BATCH = np.random.default_rng(7).standard_normal((1, 784)).astype(np.float32)
REST_BODY = json.dumps(
    {
        "inputs": [
            {"name": "input", "datatype": "FP32", "shape": [1, 784], "data": BATCH[0].tolist()}
        ]
    }
).encode()


@dataclass
class EdgeMesh:
    mesh: Mesh
    model: Path
    user_ca: UserCA
    user_ca_file: Path
    user_pair: UserPair
    cert_file: Path  # the user's files region `us` serves
    key_file: Path

    def gateway(self, region: str) -> str:
        return self.mesh.gateway(region)

    @property
    def edge_ca_file(self) -> Path:
        """The control plane's edge CA: what clients of mesh-ca gateways trust."""
        return self.mesh.state_dir / "controlplane" / EDGE_CA_CERT_FILE

    @property
    def expected(self) -> np.ndarray:
        return local_torch(self.model, torch.from_numpy(BATCH)).numpy()


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeMesh]:
    root = tmp_path_factory.mktemp("edge-tls")
    model = build_mlp(root / "mlp.pt", seed=0)
    user_ca = UserCA.create()
    pair = user_ca.issue(NAMES, lifetime=timedelta(days=1))
    cert, key = pair.write(root / "user-tls")
    flags = {
        MESH_CA: {"flags": ["--tls-from-mesh-ca"]},
        FILES: {"flags": ["--tls-cert", str(cert), "--tls-key", str(key)]},
    }
    with running_mesh(
        root,
        regions=(MESH_CA, FILES),
        region_facts=flags,
        controlplane_flags=(
            "--gateway-cert-ttl",
            CERT_TTL,
            "--advertise-host",
            "127.0.0.1",
            "--advertise-host",
            CONTROLPLANE_NAME,
        ),
    ) as mesh:
        mesh.apply(deployment_yaml(DEPLOYMENT, {"v1": model}, "v1", [MESH_CA]))
        mesh.wait_ready(DEPLOYMENT)
        for region, mode in ((MESH_CA, "mesh-ca"), (FILES, "files")):
            wait_until(
                lambda r=region, m=mode: mesh.region(r).status.edge_tls == m,
                60,
                f"region {region} to report edge TLS {mode}",
            )
        yield EdgeMesh(mesh, model, user_ca, user_ca.write(root / "user-ca.crt"), pair, cert, key)


def _https(address: str, context: ssl.SSLContext) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"https://{address}/v2/models/{DEPLOYMENT}/infer",
        data=REST_BODY,
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=15, context=context) as reply:
        return reply.status, json.loads(reply.read())


def _grpc_infer(address: str, credentials: grpc.ChannelCredentials | None) -> np.ndarray:
    channel = (
        grpc.secure_channel(address, credentials)
        if credentials is not None
        else grpc.insecure_channel(address)
    )
    with channel:
        response = oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            infer_request(DEPLOYMENT, BATCH),
            metadata=(("x-meshline-deployment", DEPLOYMENT),),
            timeout=15,
        )
    return output_array(response)


def _envoy_pid(mesh: Mesh, region: str) -> int:
    out = subprocess.run(
        ["pgrep", "-P", str(mesh.agents[region].pid), "-f", "bootstrap.yaml"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert len(out) == 1, f"{region}'s Envoy: {out}"
    return int(out[0])


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- mesh-ca -----------------------------------------------------------------------------------


@pytest.mark.parametrize("gateway_region", [MESH_CA, FILES])
def test_tritonclient_with_ssl_true_infers_through_the_gateway(
    edge: EdgeMesh, gateway_region: str
) -> None:
    """tritonclient as the README shows it: gRPC `ssl=True, root_certificates=...` and HTTP
    `ssl=True` with the CA, at the mesh-ca gateway (the control plane's edge-ca.crt) and at the
    files one (the user's CA; forwarded to eu)."""
    ca = edge.edge_ca_file if gateway_region == MESH_CA else edge.user_ca_file
    answers = triton_infer(
        edge.gateway(gateway_region),
        DEPLOYMENT,
        BATCH,
        cases=("grpc", "http-binary"),
        headers={"x-meshline-deployment": DEPLOYMENT},
        ca_file=ca,
    )
    for case, answer in answers.items():
        assert isinstance(answer, np.ndarray), f"{case}: {answer}"
        np.testing.assert_allclose(answer, edge.expected, rtol=1e-5, atol=1e-6)


def test_https_and_curl_with_the_edge_ca(edge: EdgeMesh) -> None:
    address = edge.gateway(MESH_CA)
    status, body = _https(address, ssl.create_default_context(cafile=str(edge.edge_ca_file)))
    assert status == 200 and body["outputs"]
    # The certificate names what the gateway is dialled at: localhost too, on loopback.
    port = address.rpartition(":")[2]
    curl = subprocess.run(
        [
            "curl", "-sS", "--fail", "--cacert", str(edge.edge_ca_file),
            "-H", "content-type: application/json", "--data-binary", "@-",
            f"https://localhost:{port}/v2/models/{DEPLOYMENT}/infer",
        ],
        input=REST_BODY, capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert curl.returncode == 0, curl.stderr
    assert json.loads(curl.stdout)["outputs"][0]["shape"] == [1, 10]


@pytest.mark.parametrize("protocol", [(), ("--http",)], ids=["grpc", "http"])
def test_meshline_infer_speaks_tls_to_a_region_that_reports_it(
    edge: EdgeMesh, protocol: tuple[str, ...]
) -> None:
    """The CLI reads the region's edge TLS from its status and trusts the control plane's edge
    CA, found beside the CA it trusts for the control plane (the test session's context for
    this address names `<state>/controlplane/ca.crt`)."""
    result = subprocess.run(
        [
            *MESHLINE, "infer", DEPLOYMENT, "--input", "input=0.5", "--region", MESH_CA,
            "--address", edge.mesh.address, *protocol,
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "(TLS)" in result.stdout and "served by worker" in result.stdout


def test_plain_text_to_the_tls_port_fails(edge: EdgeMesh) -> None:
    mesh = edge.mesh
    address = edge.gateway(MESH_CA)
    before = mesh.worker_requests(MESH_CA, DEPLOYMENT)
    with pytest.raises(grpc.RpcError) as refused:
        _grpc_infer(address, None)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    request = urllib.request.Request(
        f"http://{address}/v2/models/{DEPLOYMENT}/infer",
        data=REST_BODY,
        headers={"content-type": "application/json"},
    )
    # Envoy ends the handshake it cannot make: a reset or closed connection, or a reply that is
    # no HTTP.
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(request, timeout=10)
    assert mesh.worker_requests(MESH_CA, DEPLOYMENT) == before


def test_a_client_that_does_not_trust_the_edge_ca_fails_the_handshake(edge: EdgeMesh) -> None:
    mesh = edge.mesh
    address = edge.gateway(MESH_CA)
    before = mesh.worker_requests(MESH_CA, DEPLOYMENT)
    # The system's roots (curl and browsers by default), another CA, and the mesh CA: what
    # the CLI and agents trust for the control plane vouches for no gateway.
    with pytest.raises(urllib.error.URLError) as untrusted:
        _https(address, ssl.create_default_context())
    assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)
    with pytest.raises(urllib.error.URLError) as untrusted:
        _https(address, ssl.create_default_context(cafile=str(mesh.ca_file)))
    assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)
    for ca in (edge.user_ca.pem.encode(), mesh.ca_file.read_bytes()):
        with pytest.raises(grpc.RpcError) as refused:
            _grpc_infer(address, grpc.ssl_channel_credentials(ca))
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert mesh.worker_requests(MESH_CA, DEPLOYMENT) == before
    # A certificate of the edge CA, as its clients check it.
    np.testing.assert_allclose(
        _grpc_infer(address, grpc.ssl_channel_credentials(edge.edge_ca_file.read_bytes())),
        edge.expected,
        rtol=1e-5,
        atol=1e-6,
    )


def test_the_edge_ca_is_no_ca_the_control_planes_clients_trust(edge: EdgeMesh) -> None:
    """The certificate the gateway serves chains to the edge CA, and the edge CA is not the
    mesh CA: served by anyone, it passes no check of the CLI or an agent."""
    served = served_certificate(edge.gateway(MESH_CA))
    edge_ca = x509.load_pem_x509_certificate(edge.edge_ca_file.read_bytes())
    mesh_ca = x509.load_pem_x509_certificate(edge.mesh.ca_file.read_bytes())
    served.verify_directly_issued_by(edge_ca)
    assert served.issuer != mesh_ca.subject
    assert _spki(edge_ca) != _spki(mesh_ca)
    usage = served.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    sans = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == []


def _spki(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_an_agent_asking_for_a_name_of_the_control_plane_is_refused(edge: EdgeMesh) -> None:
    """A region holding a valid join token asks for an edge certificate naming the control
    plane: its agent stream is refused (PERMISSION_DENIED, naming the name), the agent exits,
    and the control plane logs the refusal."""
    mesh = edge.mesh
    agent = mesh.start_agent("rogue", flags=["--tls-from-mesh-ca", "--tls-name", CONTROLPLANE_NAME])
    wait_until(lambda: not agent.alive(), 60, "the rogue region's agent to be refused")
    assert agent.proc.returncode == 1
    said = f"{CONTROLPLANE_NAME} is a name of the control plane"
    assert said in agent.log()
    assert said in mesh.controlplane.log()
    assert mesh.region("rogue").status.edge_tls == ""


def test_edge_certificate_rotation_under_a_client_loop_fails_no_request(edge: EdgeMesh) -> None:
    mesh = edge.mesh
    address = edge.gateway(MESH_CA)
    pid = _envoy_pid(mesh, MESH_CA)
    serials: set[int] = set()

    def rotated(times: int) -> bool:
        serials.add(served_certificate(address).serial_number)
        return len(serials) > times

    # gRPC keeps its connections; https makes a new one per request, so each handshake meets
    # the certificate served at that moment.
    grpc_loop = ClientLoop(
        address, DEPLOYMENT, BATCH, root_certificates=edge.edge_ca_file.read_bytes()
    )
    rest_context = ssl.create_default_context(cafile=str(edge.edge_ca_file))
    with grpc_loop, _HttpsLoop(address, rest_context) as https_loop:
        wait_until(lambda: grpc_loop.count() > 20 and https_loop.ok > 10, 30, "steady traffic")
        wait_until(lambda: rotated(2), 60, "two rotations of eu's edge certificate")
        at = (grpc_loop.count(), https_loop.ok)
        wait_until(
            lambda: grpc_loop.count() > at[0] + 10 and https_loop.ok > at[1] + 10,
            30,
            "traffic after the rotations",
        )
    assert grpc_loop.failures == [], grpc_loop.failures[:5]
    assert https_loop.failures == [], https_loop.failures[:5]
    assert _envoy_pid(mesh, MESH_CA) == pid  # no restart
    # Status shows the certificate clients get now.
    wait_until(
        lambda: (
            mesh.region(MESH_CA).status.edge_certificate_expires_at
            == _rfc3339(served_certificate(address).not_valid_after_utc)
        ),
        30,
        "status to show the served edge certificate",
    )


class _HttpsLoop:
    """One https request after another through a new connection each, counting failures."""

    def __init__(self, address: str, context: ssl.SSLContext) -> None:
        import threading

        self.address = address
        self.context = context
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, _ = _https(self.address, self.context)
            except (OSError, urllib.error.URLError) as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
            else:
                if status == 200:
                    self.ok += 1
                else:
                    self.failures.append(f"HTTP {status}")

    def __enter__(self) -> _HttpsLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=20)


# -- files -------------------------------------------------------------------------------------


def test_the_users_certificate_is_served_and_replacing_its_files_needs_no_restart(
    edge: EdgeMesh,
) -> None:
    mesh = edge.mesh
    address = edge.gateway(FILES)
    user_context = ssl.create_default_context(cafile=str(edge.user_ca_file))
    assert served_certificate(address).serial_number == edge.user_pair.serial
    assert _https(address, user_context)[0] == 200  # forwarded to eu
    status = mesh.region(FILES).status
    assert (status.edge_tls, status.edge_certificate_expires_at) == (
        "files",
        _rfc3339(edge.user_pair.not_after),
    )
    pid = _envoy_pid(mesh, FILES)
    # A renewal as certbot or cert-manager does it: new files written aside, renamed over the
    # old ones (key first, then certificate: Envoy keeps the old pair until they match).
    renewed = edge.user_ca.issue(NAMES, lifetime=timedelta(days=3))
    staged_cert, staged_key = renewed.write(edge.cert_file.parent / "staged")
    os.replace(staged_key, edge.key_file)
    os.replace(staged_cert, edge.cert_file)
    wait_until(
        lambda: served_certificate(address).serial_number == renewed.serial,
        30,
        "Envoy to serve the replaced certificate",
    )
    assert _envoy_pid(mesh, FILES) == pid
    assert _https(address, user_context)[0] == 200
    wait_until(
        lambda: (
            mesh.region(FILES).status.edge_certificate_expires_at == _rfc3339(renewed.not_after)
        ),
        30,
        "status to show the replaced certificate's expiry",
    )


def test_get_regions_shows_edge_tls(edge: EdgeMesh) -> None:
    listed = subprocess.run(
        [*MESHLINE, "get", "regions", "--address", edge.mesh.address],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert listed.returncode == 0, listed.stderr
    assert "EDGE TLS" in listed.stdout
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert "mesh-ca until " in rows[MESH_CA] and "files until " in rows[FILES]
