"""Who calls on the mesh port, from the auth context grpc hands the servicer: a region only
with a certificate of this mesh's CA that is valid now."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from controlplane.pki.ca import MeshCA, open_ca
from controlplane.pki.issue import issue_region_certificate, issue_server_certificate
from controlplane.pki.peer import (
    PeerNotARegionError,
    PeerUnauthenticatedError,
    peer_region,
)
from tests.controlplane.pki.builders import T0, csr_pem, ec_key


@pytest.fixture
def ca(tmp_path: Path) -> MeshCA:
    return open_ca(tmp_path / "mesh", None, T0)


def _context(pem: str | bytes) -> dict[str, list[bytes]]:
    data = pem.encode() if isinstance(pem, str) else pem
    return {"transport_security_type": [b"ssl"], "x509_pem_cert": [data]}


def test_a_region_certificate_names_its_region(ca: MeshCA) -> None:
    issued = issue_region_certificate(ca, csr_pem(ec_key()), "eu", T0, timedelta(hours=1))
    region, facts = peer_region(_context(issued.certificate_pem), ca, T0 + timedelta(minutes=1))
    assert region == "eu" and facts.serial == issued.facts.serial


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({}, "no client certificate"),
        ({"x509_pem_cert": []}, "no client certificate"),
        ({"x509_pem_cert": [b"garbage"]}, "no client certificate"),
    ],
)
def test_no_certificate_is_unauthenticated(
    ca: MeshCA, context: dict[str, list[bytes]], expected: str
) -> None:
    with pytest.raises(PeerUnauthenticatedError, match=expected):
        peer_region(context, ca, T0)


def test_another_cas_certificate_is_unauthenticated(ca: MeshCA, tmp_path: Path) -> None:
    other = open_ca(tmp_path / "other", None, T0)
    issued = issue_region_certificate(other, csr_pem(ec_key()), "eu", T0)
    with pytest.raises(PeerUnauthenticatedError, match="not issued by this mesh's CA"):
        peer_region(_context(issued.certificate_pem), ca, T0)


@pytest.mark.parametrize("offset", [timedelta(hours=1), timedelta(hours=2), -timedelta(hours=1)])
def test_a_certificate_outside_its_lifetime_is_unauthenticated(
    ca: MeshCA, offset: timedelta
) -> None:
    issued = issue_region_certificate(ca, csr_pem(ec_key()), "eu", T0, timedelta(hours=1))
    with pytest.raises(PeerUnauthenticatedError, match=f"serial {issued.facts.serial}.*not now"):
        peer_region(_context(issued.certificate_pem), ca, T0 + offset)


def test_the_control_planes_certificate_is_no_region(ca: MeshCA) -> None:
    server = issue_server_certificate(ca, [], T0)
    with pytest.raises(PeerNotARegionError, match="names spiffe://meshline/controlplane, not a"):
        peer_region(_context(server.certificate_pem), ca, T0)
