"""mTLS between gateways, end to end: a real control plane and two regions (eu serves, us only
forwards), real Envoys and Torch workers.

The control plane runs with short-lived gateway certificates (`--gateway-cert-ttl`), so the
rotation test sees several rotations in seconds. Rotation shows on each Envoy's admin `/certs`
(the serial of the certificate it presents).
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from meshline import wire
from tests.e2e.conftest import deployment_yaml
from tests.harness.load import ClientLoop
from tests.harness.mesh import Mesh, running_mesh
from tests.harness.peer_tls import (
    PeerAnswer,
    client_context,
    control_plane_identity,
    issue_identity,
    mesh_ca,
    new_ca,
    peer_request,
)
from tests.harness.processes import wait_until
from workers.demo import build_mlp

SERVING, ENTRY = "eu", "us"
DEPLOYMENT = "tls"
# A new certificate every ~6 s (two thirds of the lifetime).
CERT_TTL = "9s"
BATCH = np.random.default_rng(5).standard_normal((1, 784)).astype(np.float32)
REST_BODY = json.dumps(
    {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 784], "data": [0.0] * 784}]}
).encode()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    root = tmp_path_factory.mktemp("mesh-tls")
    model = build_mlp(root / "mlp.pt", seed=0)
    with running_mesh(
        root, regions=(SERVING, ENTRY), controlplane_flags=("--gateway-cert-ttl", CERT_TTL)
    ) as m:
        m.apply(deployment_yaml(DEPLOYMENT, {"v1": model}, "v1", [SERVING]))
        m.wait_ready(DEPLOYMENT)
        yield m


def _peer(mesh: Mesh, who: str, files: Path) -> PeerAnswer:
    """A forwarded request for the deployment at eu's peer listener, sent by `who`."""
    ca = mesh_ca(mesh.state_dir / "controlplane")
    identities = {
        "no certificate": lambda: None,
        "another CA's certificate of a region": lambda: issue_identity(new_ca(), ENTRY),
        "mesh certificate of no region": lambda: control_plane_identity(ca),
        "mesh certificate of a region": lambda: issue_identity(ca, ENTRY),
    }
    context = None
    if who != "plain text":
        context = client_context(ca.bundle_pem.decode(), identities[who](), files)
    headers = {wire.HOP_HEADER: ENTRY, wire.VERSION_HEADER: "v1"}
    path = f"/v2/models/{DEPLOYMENT}/infer"
    return peer_request(
        mesh.region(SERVING).status.peer_address, path, headers, REST_BODY, context=context
    )


@pytest.mark.parametrize(
    "who",
    [
        "plain text",
        "no certificate",
        "another CA's certificate of a region",
        "mesh certificate of no region",
    ],
)
def test_peer_listener_takes_only_gateways_of_the_mesh(
    mesh: Mesh, who: str, tmp_path: Path
) -> None:
    before = mesh.worker_requests(SERVING, DEPLOYMENT)
    answer = _peer(mesh, who, tmp_path)
    assert answer.refused, f"{who}: answered {answer.status} {answer.body}"
    assert mesh.worker_requests(SERVING, DEPLOYMENT) == before
    served = _peer(mesh, "mesh certificate of a region", tmp_path)
    assert served.status == 200, served
    assert mesh.worker_requests(SERVING, DEPLOYMENT) == before + 1


def test_the_entry_gateway_principal_reaches_the_serving_worker(mesh: Mesh) -> None:
    secret = mesh.create_key("tls-caller", environment="production")
    wait_until(
        lambda: ENTRY in mesh.key("tls-caller").status.enforced_in, 30, "the key at us's gateway"
    )
    before = mesh.worker_principals(SERVING, DEPLOYMENT).get("tls-caller", 0)
    request = urllib.request.Request(
        f"http://{mesh.gateway(ENTRY)}/v2/models/{DEPLOYMENT}/infer",
        data=REST_BODY,
        headers={
            "content-type": "application/json",
            "authorization": f"Bearer {secret}",
            wire.PRINCIPAL_HEADER: "admin",  # a client's own claim: replaced at the entry
        },
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.headers[wire.REGION_HEADER] == SERVING
    principals = mesh.worker_principals(SERVING, DEPLOYMENT)
    assert principals.get("tls-caller", 0) == before + 1
    assert "admin" not in principals


def _serials(mesh: Mesh, region: str) -> set[str]:
    """Serials of the certificates `region`'s Envoy presents as its own (admin /certs)."""
    admin = mesh.region(region).status.admin_address
    with urllib.request.urlopen(f"http://{admin}/certs", timeout=5) as reply:
        certs = json.loads(reply.read())
    own = wire.region_spiffe_id(region)
    return {
        cert["serial_number"]
        for context in certs.get("certificates", [])
        for cert in context.get("cert_chain", [])
        if any(san.get("uri") == own for san in cert.get("subject_alt_names", []))
    }


def _envoy_pid(mesh: Mesh, region: str) -> int:
    out = subprocess.run(
        ["pgrep", "-P", str(mesh.agents[region].pid), "-f", "bootstrap.yaml"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert len(out) == 1, f"{region}'s Envoy: {out}"
    return int(out[0])


def test_rotation_under_a_client_loop_fails_no_request(mesh: Mesh) -> None:
    pids = {region: _envoy_pid(mesh, region) for region in (SERVING, ENTRY)}
    seen: dict[str, set[str]] = {region: _serials(mesh, region) for region in pids}

    def rotated(times: int) -> bool:
        for region in pids:
            seen[region] |= _serials(mesh, region)
        return all(len(serials) > times for serials in seen.values())

    with ClientLoop(mesh.gateway(ENTRY), DEPLOYMENT, BATCH, concurrency=2) as loop:
        wait_until(lambda: loop.count() > 20, 30, "steady forwarded traffic")
        wait_until(lambda: rotated(2), 60, "two rotations at both gateways")
        # A control-plane restart makes new certificates for every region (the old ones were
        # in its memory only): Envoy takes them like a rotation.
        before_restart = {region: set(serials) for region, serials in seen.items()}
        at = loop.count()
        mesh.restart_controlplane()
        mesh.wait_agents()
        wait_until(
            lambda: rotated(0) and all(seen[r] - before_restart[r] for r in seen),
            60,
            "certificates made by the restarted control plane",
        )
        wait_until(lambda: loop.count() > at + 20, 30, "traffic after the restart")
    assert loop.failures == [], loop.failures[:5]
    assert {region: _envoy_pid(mesh, region) for region in pids} == pids  # no Envoy restart
    # Status shows a certificate Envoy took (serial, expiry).
    shown = mesh.region(ENTRY).status.acked_versions["gateway certificate"]
    assert shown.startswith("serial ") and ", expires " in shown, shown
    assert _serial(shown.split()[1].rstrip(",")) in {_serial(s) for s in seen[ENTRY]}


def _serial(text: str) -> str:
    return text.lower().replace(":", "").lstrip("0")
