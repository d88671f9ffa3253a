"""identify_peer: which gRPC status a mesh-port caller's certificate problem is answered with
(the one mapping MeshPeers and Renew share)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import grpc
import pytest

from controlplane.agents.peers import MeshPeer, PeerRefusal, identify_peer
from controlplane.pki.ca import MeshCA, open_ca
from controlplane.pki.issue import issue_region_certificate, issue_server_certificate
from controlplane.pki.peer import AuthContext
from tests.controlplane.pki.builders import T0, csr_pem, ec_key


@pytest.fixture
def ca(tmp_path: Path) -> MeshCA:
    return open_ca(tmp_path / "mesh", None, T0)


def _context(pem: str | bytes) -> AuthContext:
    data = pem.encode() if isinstance(pem, str) else pem
    return {"transport_security_type": [b"ssl"], "x509_pem_cert": [data]}


def _region(ca: MeshCA, tmp_path: Path) -> AuthContext:
    issued = issue_region_certificate(ca, csr_pem(ec_key()), "eu", T0, timedelta(hours=1))
    return _context(issued.certificate_pem)


def _other_cas_region(ca: MeshCA, tmp_path: Path) -> AuthContext:
    other = open_ca(tmp_path / "other", None, T0)
    return _context(issue_region_certificate(other, csr_pem(ec_key()), "eu", T0).certificate_pem)


def _control_plane(ca: MeshCA, tmp_path: Path) -> AuthContext:
    return _context(issue_server_certificate(ca, [], T0).certificate_pem)


def _none(ca: MeshCA, tmp_path: Path) -> AuthContext:
    return {}


def test_a_region_certificate_is_its_region(ca: MeshCA, tmp_path: Path) -> None:
    found = identify_peer(_region(ca, tmp_path), ca, T0)
    assert isinstance(found, MeshPeer) and found.region == "eu"


@pytest.mark.parametrize(
    ("context", "at", "code", "message"),
    [
        (_none, T0, grpc.StatusCode.UNAUTHENTICATED, "no client certificate"),
        (_region, T0 + timedelta(hours=2), grpc.StatusCode.UNAUTHENTICATED, "not now"),
        (_other_cas_region, T0, grpc.StatusCode.UNAUTHENTICATED, "not issued by this mesh's CA"),
        (_control_plane, T0, grpc.StatusCode.PERMISSION_DENIED, "not a region"),
    ],
)
def test_a_certificate_problem_is_refused_with_its_status(
    ca: MeshCA,
    tmp_path: Path,
    context: Callable[[MeshCA, Path], AuthContext],
    at: datetime,
    code: grpc.StatusCode,
    message: str,
) -> None:
    found = identify_peer(context(ca, tmp_path), ca, at)
    assert isinstance(found, PeerRefusal)
    assert found.code == code and message in found.message
