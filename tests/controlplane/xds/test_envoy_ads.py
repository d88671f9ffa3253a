"""The ADS server against a real Envoy: a snapshot is ACKed, an invalid cluster is NACKed."""

from __future__ import annotations

import json
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from envoy.config.cluster.v3 import cluster_pb2
from google.protobuf import duration_pb2

from controlplane.pki.ca import MeshCA
from controlplane.pki.gateway import issue_gateway_certificate
from controlplane.xds import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, SnapshotCache
from tests.controlplane.xds import resources as r
from tests.controlplane.xds.ads_client import eventually
from tests.harness.peer_tls import new_ca
from tests.harness.processes import free_port, managed, port_open

pytestmark = pytest.mark.timeout(90)

ENVOY = Path(sys.executable).parent / "envoy"
NODE = "eu-west"
# The types this test serves (its listener names no filter config, so Envoy asks for no ECDS).
SERVED = (CLUSTER, ENDPOINT, LISTENER, ROUTE)


BOOTSTRAP = """\
node: {{id: {node}, cluster: meshline-gateway}}
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin_port}}}}}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services: [{{envoy_grpc: {{cluster_name: xds}}}}]
  cds_config: {{ads: {{}}, resource_api_version: V3}}
  lds_config: {{ads: {{}}, resource_api_version: V3}}
static_resources:
  clusters:
  - name: xds
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: xds
      endpoints:
      - lb_endpoints:
        - endpoint:
            address: {{socket_address: {{address: {host}, port_value: {port}}}}}
"""


def _bootstrap(ads_address: str, admin_port: int) -> str:
    host, port = ads_address.rsplit(":", 1)
    text = BOOTSTRAP.format(node=NODE, admin_port=admin_port, host=host, port=port)
    yaml.safe_load(text)  # fail here, not inside Envoy, if the template breaks
    return text


def _broken_cluster(name: str) -> cluster_pb2.Cluster:
    cluster = r.cluster(name)
    cluster.connect_timeout.CopyFrom(duration_pb2.Duration(seconds=-1))
    return cluster


async def test_envoy_acks_snapshot_and_nacks_invalid_cluster(
    cache: SnapshotCache, ads_address: str, tmp_path: Path
) -> None:
    listen_port = free_port()
    good = r.resources(
        clusters=[r.cluster("svc")],
        assignments=[r.load_assignment("svc", [free_port()])],
        listeners=[r.listener("http", listen_port, "routes")],
        routes=[r.route_config("routes", "svc")],
    )
    cache.set_resources(NODE, good)
    config = tmp_path / "envoy.yaml"
    config.write_text(_bootstrap(ads_address, free_port()))
    args = [
        str(ENVOY),
        "-c",
        str(config),
        "--disable-hot-restart",
        "--concurrency",
        "1",
        "-l",
        "warning",
    ]

    with managed("envoy", args, tmp_path):

        def all_in_sync() -> bool:
            types = cache.node_status(NODE).types
            return all(types[t].in_sync for t in SERVED)

        await eventually(all_in_sync, "Envoy ACKs CDS, EDS, LDS and RDS", timeout_s=30)
        status = cache.node_status(NODE)
        assert status.connected
        assert all(status.types[t].nack is None for t in SERVED)
        assert set(cache.acked_resources(NODE, ENDPOINT)) == {"svc"}
        assert set(cache.acked_resources(NODE, ROUTE)) == {"routes"}
        await eventually(lambda: port_open("127.0.0.1", listen_port), "listener is serving")
        good_cds = status.types[CLUSTER].acked_version

        bad = dict(good)
        bad[CLUSTER] = {"svc": _broken_cluster("svc")}
        cache.set_resources(NODE, bad)
        bad_cds = cache.node_status(NODE).types[CLUSTER].snapshot_version

        def nacked() -> bool:
            return cache.node_status(NODE).types[CLUSTER].nack is not None

        await eventually(nacked, "Envoy NACKs the invalid cluster", timeout_s=30)
        cds = cache.node_status(NODE).types[CLUSTER]
        assert cds.nack is not None and cds.nack.version == bad_cds
        assert "positive duration" in cds.nack.message  # Envoy's own error text
        assert cds.acked_version == good_cds and not cds.in_sync
        assert cache.acked_resources(NODE, CLUSTER)["svc"].connect_timeout.seconds == 1
        assert cache.node_status(NODE).types[LISTENER].in_sync

        # A valid change that swaps the cluster (make-before-break) converges fully.
        swapped = r.resources(
            clusters=[r.cluster("svc2", 2000)],
            assignments=[r.load_assignment("svc2", [free_port()])],
            listeners=[r.listener("http", listen_port, "routes")],
            routes=[r.route_config("routes", "svc2")],
        )
        cache.set_resources(NODE, swapped)
        await eventually(all_in_sync, "Envoy ACKs the swapped snapshot", timeout_s=30)
        assert set(cache.acked_resources(NODE, CLUSTER)) == {"svc2"}
        assert set(cache.acked_resources(NODE, ENDPOINT)) == {"svc2"}
        assert cache.node_status(NODE).types[CLUSTER].nack is None


def _gateway_certificate(ca: MeshCA, region: str) -> tuple[str, str, str]:
    """(chain, key, serial) of a fresh certificate of `region` from `ca`."""
    issued = issue_gateway_certificate(ca, region, datetime.now(UTC), timedelta(hours=1))
    return issued.chain_pem, issued.key_pem, issued.facts.serial


def _admin_json(admin_port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}{path}", timeout=5) as reply:
        return json.loads(reply.read())


def _serials_in_use(admin_port: int) -> set[str]:
    certs = _admin_json(admin_port, "/certs")
    return {
        cert["serial_number"].lower().lstrip("0")
        for context in certs.get("certificates", [])
        for cert in context.get("cert_chain", [])
    }


async def test_envoy_takes_secrets_over_ads_rotates_them_in_place_and_nacks_a_bad_one(
    cache: SnapshotCache, ads_address: str, tmp_path: Path
) -> None:
    """A cluster that names two secrets: Envoy asks for them by name on the ADS stream, warms
    the cluster once they came, swaps a rotated certificate in without a restart, rejects a
    broken one (and keeps the one it had), and never shows a private key."""
    ca = new_ca()
    chain, key, serial = _gateway_certificate(ca, "eu-west")
    bundle = ca.bundle_pem.decode()

    def snapshot(chain: str, key: str) -> r.Resources:
        return r.resources(
            clusters=[r.tls_cluster("peer", "identity", "mesh-ca")],
            assignments=[r.load_assignment("peer", [free_port()])],
            secrets=[r.certificate_secret("identity", chain, key), r.ca_secret("mesh-ca", bundle)],
        )

    cache.set_resources(NODE, snapshot(chain, key))
    admin_port = free_port()
    config = tmp_path / "envoy.yaml"
    config.write_text(_bootstrap(ads_address, admin_port))
    args = [str(ENVOY), "-c", str(config), "--disable-hot-restart", "--concurrency", "1",
            "-l", "warning"]  # fmt: skip

    with managed("envoy", args, tmp_path) as envoy:

        def in_sync(*types: str) -> bool:
            status = cache.node_status(NODE).types
            return all(t in status and status[t].in_sync for t in types)

        await eventually(lambda: in_sync(SECRET, CLUSTER), "Envoy ACKs SDS and CDS", timeout_s=30)
        assert set(cache.acked_resources(NODE, SECRET)) == {"identity", "mesh-ca"}
        await eventually(lambda: serial in _serials_in_use(admin_port), "the certificate in use")

        # Rotation: the same secret with new content, nothing else changes.
        cds_version = cache.node_status(NODE).types[CLUSTER].acked_version
        chain2, key2, serial2 = _gateway_certificate(ca, "eu-west")
        cache.set_resources(NODE, snapshot(chain2, key2))
        await eventually(lambda: in_sync(SECRET), "Envoy ACKs the rotated secret", timeout_s=30)
        await eventually(lambda: serial2 in _serials_in_use(admin_port), "the new certificate")
        assert serial not in _serials_in_use(admin_port)
        assert cache.node_status(NODE).types[CLUSTER].acked_version == cds_version
        assert envoy.alive()  # no restart

        # A key that does not go with the certificate: NACKed with Envoy's words, the rotated
        # certificate stays in use.
        _, other_key, _ = _gateway_certificate(ca, "eu-west")
        chain3, _, serial3 = _gateway_certificate(ca, "eu-west")
        cache.set_resources(NODE, snapshot(chain3, other_key))

        def nacked() -> bool:
            return cache.node_status(NODE).types[SECRET].nack is not None

        await eventually(nacked, "Envoy NACKs the broken secret", timeout_s=30)
        nack = cache.node_status(NODE).types[SECRET].nack
        assert nack is not None and nack.changed == {"identity"}
        assert "KEY_VALUES_MISMATCH" in nack.message, nack  # Envoy's own words
        assert serial2 in _serials_in_use(admin_port) and serial3 not in _serials_in_use(admin_port)

        dump = json.dumps(_admin_json(admin_port, "/config_dump"))
        assert "identity" in dump and "[redacted]" in dump
        assert "PRIVATE KEY" not in dump
        for private in (key, key2, other_key):
            body = private.splitlines()[1]  # the key's own bytes start there
            assert body not in dump
