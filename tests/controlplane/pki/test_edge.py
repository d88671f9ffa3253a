"""Edge certificates: a server certificate of the edge CA (never the mesh CA) for the names
clients dial a gateway at, and nothing else: no SPIFFE id, no client use, so the mesh never takes
it for a region's and no client of the control plane for the control plane. A fresh key each,
renewed two thirds into its life."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from controlplane.pki.ca import create_ca
from controlplane.pki.edge import issue_edge_certificate
from controlplane.pki.edge_ca import create_edge_ca

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MESH_CA = create_ca(T0 - timedelta(days=1))
EDGE_CA = create_edge_ca(T0 - timedelta(days=1))
CA = EDGE_CA.signing


def test_it_names_the_addresses_and_dns_names_clients_dial() -> None:
    issued = issue_edge_certificate(
        EDGE_CA, "eu", ["10.0.0.2", "0.0.0.0", "GW.example.com", "10.0.0.2"], T0, timedelta(hours=1)
    )
    assert issued.names == ("10.0.0.2", "gw.example.com")
    chain = x509.load_pem_x509_certificates(issued.chain_pem.encode())
    leaf = chain[0]
    leaf.verify_directly_issued_by(CA.certificate)
    # The leaf, and the intermediates of a user-supplied CA (meshline's own CA is the root).
    assert chain[1:] == list(CA.chain)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.2")]
    assert sans.get_values_for_type(x509.DNSName) == ["gw.example.com"]
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == []
    assert issued.facts.spiffe_id == ""
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]  # never a client of anything
    assert issued.facts.not_after == T0 + timedelta(hours=1)
    assert issued.renew_at == T0 + timedelta(minutes=40)
    key = serialization.load_pem_private_key(issued.key_pem.encode(), password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert key.public_key().public_bytes(der, spki) == leaf.public_key().public_bytes(der, spki)
    assert issued.key_pem not in repr(issued)


def test_every_certificate_has_its_own_key() -> None:
    first = issue_edge_certificate(EDGE_CA, "eu", ["10.0.0.2"], T0, timedelta(hours=1))
    second = issue_edge_certificate(EDGE_CA, "eu", ["10.0.0.2"], T0, timedelta(hours=1))
    assert first.key_pem != second.key_pem and first.facts.serial != second.facts.serial


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["0.0.0.0"], "needs a name clients dial"),
        ([], "needs a name clients dial"),
        (["gw_1.example.com"], "neither an IP address nor a DNS name"),
    ],
)
def test_no_certificate_without_a_name(names: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        issue_edge_certificate(EDGE_CA, "eu", names, T0, timedelta(hours=1))


def test_it_is_the_edge_cas_not_the_mesh_cas() -> None:
    issued = issue_edge_certificate(EDGE_CA, "eu", ["localhost"], T0, timedelta(hours=1))
    leaf = x509.load_pem_x509_certificate(issued.chain_pem.encode())
    assert leaf.issuer == EDGE_CA.signing.certificate.subject != MESH_CA.certificate.subject
    with pytest.raises((ValueError, InvalidSignature)):
        leaf.verify_directly_issued_by(MESH_CA.certificate)
