"""The offline check of a suspect leaves edge TLS out: it is no deployment's, a mesh-CA edge key
must not reach the disk, and the user's files (edge TLS from files) are on the gateway's host,
not the control plane's, so validating with them would blame every deployment."""

from __future__ import annotations

from dataclasses import replace

from controlplane.ir.model import EdgeTls
from controlplane.quarantine.offline import rejects_alone
from meshline.edge_tls import EdgeTlsMode
from tests.controlplane.translate.cases import EDGE_TLS_FILES


def test_a_good_deployment_is_not_blamed_for_edge_files_elsewhere() -> None:
    gateway = replace(
        EDGE_TLS_FILES,
        edge=EdgeTls(EdgeTlsMode.FILES, sds_path="/nonexistent/meshline/edge/edge-sds.yaml"),
    )
    assert rejects_alone(gateway, gateway.routes[0]) == ""
