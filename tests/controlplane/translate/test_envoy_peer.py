"""The peer path with the real Envoy: two gateways, mTLS between their peer listeners.

Region `us` (the entry) runs nothing and forwards to region `eu`, which runs the real Torch
worker (`mnist`, whose own request counter says whether a refused request reached it) and the
translate upstream (`echo`, which answers with the headers it got). Both gateways come from
GatewayIRs through translate and the static bootstrap, with certificates of one mesh CA (the
control plane's issuing code), so everything here is what the control plane would send.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.api.key_tokens import KeyClaims, MintedKey, mint_key
from controlplane.ir import DeploymentRoute, Endpoint, GatewayIR, HealthCheckSettings
from controlplane.ir.model import TIER_GATEWAY, Backend, Credentials, PeerPath, PublicKey, Tier
from controlplane.pki.ca import MeshCA
from controlplane.pki.gateway import issue_gateway_certificate
from controlplane.reconcile.identities import gateway_tls
from meshline import wire
from meshline.inference import grpc_service_pb2_grpc as pb_grpc
from tests.controlplane.translate.envoy_gateway import HOST, Gateway, running_gateway
from tests.controlplane.translate.test_envoy_access import REST_BODY, _grpc_request, worker_requests
from tests.harness.peer_tls import (
    Identity,
    PeerAnswer,
    client_context,
    control_plane_identity,
    issue_identity,
    new_ca,
    peer_request,
)
from tests.harness.processes import free_port, managed
from tests.harness.worker import WorkerHandle, running_worker
from workers.demo import DEMO_SIGNATURE, build_mlp

SERVING, ENTRY = "eu", "us"
MODEL, ECHO = "mnist", "echo"
VERSION = "v1"
CHECKS = HealthCheckSettings(interval_s=2.0, timeout_s=2.0)
PROTOCOLS = ("rest", "grpc")


@dataclass
class Peers:
    ca: MeshCA
    serving: Gateway
    entry: Gateway
    serving_peer: str  # host:port of eu's peer listener
    worker: WorkerHandle
    key: MintedKey
    key_pems: tuple[str, ...]  # the gateways' private keys
    files: Path


def _peer_path(ca: MeshCA, region: str, port: int, other: str) -> PeerPath:
    issued = issue_gateway_certificate(ca, region, datetime.now(UTC), timedelta(hours=1))
    return PeerPath(HOST, port, gateway_tls(issued, ca.bundle_pem.decode()), (other,))


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    logs = tmp_path_factory.mktemp("envoy-peer")
    ca = new_ca()
    key = mint_key(KeyClaims("alice", int(time.time())), private_key=Ed25519PrivateKey.generate())
    credentials = Credentials((PublicKey(key.key_id, key.public_key),))
    echo_grpc, echo_http = free_port(), free_port()
    with ExitStack() as stack:
        stack.enter_context(
            managed(
                "upstream-echo",
                [
                    sys.executable,
                    "-m",
                    "tests.controlplane.translate.translate_upstream",
                    f"--name={ECHO}",
                    f"--grpc-port={echo_grpc}",
                    f"--http-port={echo_http}",
                ],
                logs,
            )
        )
        model = build_mlp(logs / "mnist.pt", seed=0)
        worker = stack.enter_context(
            running_worker(logs, model, model_name=MODEL, signature=DEMO_SIGNATURE)
        )
        local = {
            MODEL: Endpoint("torch", HOST, worker.grpc_port, worker.http_port),
            ECHO: Endpoint(ECHO, HOST, echo_grpc, echo_http),
        }
        serving_peer_port = free_port()
        serving = GatewayIR(
            SERVING,
            HOST,
            free_port(),
            tuple(
                DeploymentRoute.local(
                    name, "production", (e,), SERVING, VERSION, health_check=CHECKS
                )
                for name, e in local.items()
            ),
            credentials,
            _peer_path(ca, SERVING, serving_peer_port, ENTRY),
        )
        eu_host = Endpoint(f"gateway.{SERVING}", HOST, serving_peer_port, serving_peer_port)
        forwarded = Backend(
            "", VERSION, tiers=(Tier(SERVING, TIER_GATEWAY, 0, (eu_host,)),), local_endpoints=None
        )
        entry = GatewayIR(
            ENTRY,
            HOST,
            free_port(),
            tuple(
                DeploymentRoute(name, "production", (forwarded,), health_check=CHECKS)
                for name in local
            ),
            credentials,
            _peer_path(ca, ENTRY, free_port(), SERVING),
        )
        serving_gw = stack.enter_context(
            running_gateway(serving, logs, name="envoy-eu", wait_healthy=True)
        )
        # Every host healthy at the entry: its probes passed eu's peer listener (mTLS).
        entry_gw = stack.enter_context(
            running_gateway(entry, logs, name="envoy-us", wait_healthy=True)
        )
        assert serving.peer.tls is not None and entry.peer.tls is not None
        yield Peers(
            ca,
            serving_gw,
            entry_gw,
            f"{HOST}:{serving_peer_port}",
            worker,
            key,
            (serving.peer.tls.private_key, entry.peer.tls.private_key),
            logs / "client-certs",
        )


def _bearer(peers: Peers) -> dict[str, str]:
    return {"authorization": f"Bearer {peers.key.secret}"}


def _rest(gateway: Gateway, deployment: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    connection = http.client.HTTPConnection(HOST, gateway.port, timeout=10)
    try:
        connection.request(
            "POST",
            f"/v2/models/{deployment}/infer",
            REST_BODY,
            {"content-type": "application/json", **headers},
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def _grpc(
    gateway: Gateway, deployment: str, headers: dict[str, str]
) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    metadata = [(wire.DEPLOYMENT_HEADER, deployment), *headers.items()]
    with grpc.insecure_channel(gateway.address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        try:
            response = stub.ModelInfer(_grpc_request(deployment), metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            return error.code(), error.details() or "", {}
    echoed = {k: p.string_param for k, p in response.parameters.items()}
    return grpc.StatusCode.OK, "", echoed


def private_scalar(key_pem: str) -> bytes:
    """The secret part of an EC private key (its PEM also holds the public key, which the
    certificate shows too)."""
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key.private_numbers().private_value.to_bytes(32, "big")


def _decoded_strings(value: object) -> Iterator[bytes]:
    """Every string in a JSON document, as bytes and, where it is base64 (PEM), decoded."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _decoded_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _decoded_strings(item)
    elif isinstance(value, str):
        yield value.encode()
        body = "".join(line for line in value.splitlines() if not line.startswith("-----"))
        with contextlib.suppress(ValueError):
            yield base64.b64decode(body, validate=False)


def _hop_headers() -> dict[str, str]:
    return {
        wire.HOP_HEADER: ENTRY,
        wire.DEPLOYMENT_HEADER: MODEL,
        wire.ENVIRONMENT_HEADER: "production",
        wire.VERSION_HEADER: VERSION,
    }


# --- forwarded requests --------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_forwarded_request_reaches_the_serving_worker_with_the_entry_principal(
    peers: Peers, protocol: str
) -> None:
    headers = {**_bearer(peers), wire.PRINCIPAL_HEADER: "mallory"}
    if protocol == "rest":
        status, echoed = _rest(peers.entry, ECHO, headers)
        assert status == 200, echoed
    else:
        code, details, echoed = _grpc(peers.entry, ECHO, headers)
        assert code == grpc.StatusCode.OK, details
    assert echoed[wire.PRINCIPAL_HEADER] == "alice"  # set by the entry gateway, kept by eu
    assert "authorization" not in echoed


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_forwarded_inference_is_served_once(peers: Peers, protocol: str) -> None:
    before = worker_requests(peers.worker)
    if protocol == "rest":
        status, body = _rest(peers.entry, MODEL, _bearer(peers))
        assert status == 200, body
    else:
        code, details, _ = _grpc(peers.entry, MODEL, _bearer(peers))
        assert code == grpc.StatusCode.OK, details
    assert worker_requests(peers.worker) == before + 1


# --- who may talk to the peer listener -----------------------------------------------------


def _identity(peers: Peers, who: str) -> Identity | None:
    return {
        "no certificate": lambda: None,
        "another CA's certificate of a region": lambda: issue_identity(new_ca(), ENTRY),
        "mesh certificate of no region": lambda: control_plane_identity(peers.ca),
        "mesh certificate of a region": lambda: issue_identity(peers.ca, ENTRY),
    }[who]()


def _to_peer_listener(peers: Peers, who: str) -> PeerAnswer:
    context = None
    if who != "plain text":
        context = client_context(peers.ca.bundle_pem.decode(), _identity(peers, who), peers.files)
    return peer_request(
        peers.serving_peer, f"/v2/models/{MODEL}/infer", _hop_headers(), REST_BODY, context=context
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
def test_peer_listener_refuses_anyone_but_a_region_of_the_mesh(peers: Peers, who: str) -> None:
    before = worker_requests(peers.worker)
    answer = _to_peer_listener(peers, who)
    assert answer.refused, f"{who}: answered {answer.status} {answer.body}"
    assert worker_requests(peers.worker) == before
    # The same request with a region's mesh certificate is served: the counter is live.
    served = _to_peer_listener(peers, "mesh certificate of a region")
    assert served.status == 200, served
    assert worker_requests(peers.worker) == before + 1


def test_peer_listener_serves_forwarded_requests_only(peers: Peers) -> None:
    context = client_context(
        peers.ca.bundle_pem.decode(), issue_identity(peers.ca, ENTRY), peers.files
    )
    before = worker_requests(peers.worker)
    not_forwarded = {k: v for k, v in _hop_headers().items() if k != wire.HOP_HEADER}
    answer = peer_request(
        peers.serving_peer, f"/v2/models/{MODEL}/infer", not_forwarded, REST_BODY, context=context
    )
    assert answer.status == 404, answer
    assert "peer listener of region 'eu'" in str(answer.body.get("error"))
    assert worker_requests(peers.worker) == before


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_hop_marker_on_the_public_listener_is_refused(peers: Peers, protocol: str) -> None:
    before = worker_requests(peers.worker)
    headers = {**_bearer(peers), **_hop_headers()}
    if protocol == "rest":
        status, body = _rest(peers.serving, MODEL, headers)
        assert status == 403, body
        message = str(body.get("error"))
    else:
        code, message, _ = _grpc(peers.serving, MODEL, headers)
        assert code == grpc.StatusCode.PERMISSION_DENIED, message
    assert "forwarded-to-public-listener" in message
    assert "deployment 'mnist' in environment 'production'" in message
    assert worker_requests(peers.worker) == before


# --- what Envoy shows ------------------------------------------------------------------------


@pytest.mark.parametrize("region", [SERVING, ENTRY])
def test_config_dump_holds_no_private_key(peers: Peers, region: str) -> None:
    gateway = peers.serving if region == SERVING else peers.entry
    dump = gateway.admin_text("/config_dump?include_eds")
    assert "meshline-gateway-certificate" in dump and "[redacted]" in dump
    assert "PRIVATE KEY" not in dump
    shown = list(_decoded_strings(json.loads(dump)))
    for key in peers.key_pems:
        scalar = private_scalar(key)
        assert not [text for text in shown if scalar in text], "a private key in config_dump"
    certs = json.loads(gateway.admin_text("/certs"))
    named = json.dumps(certs)
    assert wire.region_spiffe_id(region) in named  # the gateway's own certificate is loaded
