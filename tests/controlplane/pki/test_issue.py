"""Signing: a region's certificate names what the control plane decides (never what the CSR
asks for), serves TLS clients and servers, lives as long as configured; bad CSRs are named.
The control plane's own certificate names its hosts, the local names and its SPIFFE id."""

from __future__ import annotations

import base64
import ipaddress
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controlplane.pki.ca import MeshCA, load_ca, open_ca
from controlplane.pki.issue import (
    CSRError,
    issue_region_certificate,
    issue_server_certificate,
    server_names,
)
from meshline.certs import read_certificate_facts
from tests.controlplane.pki.builders import T0, Issuer, ca_certificate, csr_pem, ec_key, write_pem


@pytest.fixture
def ca(tmp_path: Path) -> MeshCA:
    return open_ca(tmp_path, None, T0)


def _leaf(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificates(pem.encode())[0]


def test_the_csr_asks_but_the_control_plane_decides_the_identity(ca: MeshCA) -> None:
    asked = [
        x509.DNSName("evil.example"),
        x509.UniformResourceIdentifier("spiffe://meshline/region/us"),
        x509.UniformResourceIdentifier("spiffe://meshline/controlplane"),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
    ]
    key = ec_key()
    issued = issue_region_certificate(ca, csr_pem(key, common_name="us", sans=asked), "eu", T0)
    leaf = _leaf(issued.certificate_pem)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(sans) == [x509.UniformResourceIdentifier("spiffe://meshline/region/eu")]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "eu"
    assert leaf.public_key() == key.public_key()
    leaf.verify_directly_issued_by(ca.certificate)
    assert issued.facts.region == "eu" and issued.facts.serial == format(leaf.serial_number, "x")


def test_a_region_certificate_is_for_tls_clients_and_servers_and_no_ca(ca: MeshCA) -> None:
    leaf = _leaf(issue_region_certificate(ca, csr_pem(ec_key()), "eu", T0).certificate_pem)
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert key_usage.digital_signature and not key_usage.key_cert_sign


@pytest.mark.parametrize(
    "lifetime", [timedelta(hours=24), timedelta(seconds=30), timedelta(days=7)]
)
def test_lifetime_as_configured_backdated_a_little(ca: MeshCA, lifetime: timedelta) -> None:
    issued = issue_region_certificate(ca, csr_pem(ec_key()), "eu", T0, lifetime)
    assert issued.facts.not_after == T0 + lifetime
    assert T0 - timedelta(minutes=10) <= issued.facts.not_before < T0


def test_no_certificate_outlives_its_ca(tmp_path: Path) -> None:
    key = ec_key()
    cert_path, key_path = write_pem(
        tmp_path, [ca_certificate(key, not_after=T0 + timedelta(hours=1))], key
    )
    ca = load_ca(cert_path, key_path, T0, user_supplied=True)
    issued = issue_region_certificate(ca, csr_pem(ec_key()), "eu", T0, timedelta(hours=24))
    assert issued.facts.not_after == T0 + timedelta(hours=1)


def test_serials_are_random(ca: MeshCA) -> None:
    serials = {
        issue_region_certificate(ca, csr_pem(ec_key()), "eu", T0).facts.serial for _ in range(5)
    }
    assert len(serials) == 5 and all(len(s) > 30 for s in serials)


def test_an_rsa_csr_gets_key_encipherment(ca: MeshCA) -> None:
    key = rsa.generate_private_key(65537, 2048)
    leaf = _leaf(issue_region_certificate(ca, csr_pem(key), "eu", T0).certificate_pem)
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment


def test_an_intermediate_ca_appends_itself_to_every_leaf(tmp_path: Path) -> None:
    root_key, key = ec_key(), ec_key()
    root = ca_certificate(root_key, name="root")
    intermediate = ca_certificate(key, name="intermediate", issuer=Issuer(root, root_key))
    cert_path, key_path = write_pem(tmp_path, [intermediate, root], key)
    ca = load_ca(cert_path, key_path, T0, user_supplied=True)
    issued = issue_region_certificate(ca, csr_pem(ec_key()), "eu", T0)
    chain = x509.load_pem_x509_certificates(issued.certificate_pem.encode())
    assert chain[1:] == [intermediate]
    chain[0].verify_directly_issued_by(intermediate)


def _tampered(pem: str) -> str:
    """The CSR with one bit of its signature flipped."""
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    der = bytearray(base64.b64decode(body))
    der[-2] ^= 0x01
    encoded = base64.encodebytes(bytes(der)).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{encoded}-----END CERTIFICATE REQUEST-----\n"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: "", "csr_pem: no CSR given"),
        (lambda: "hello", "csr_pem: not a PEM certificate signing request"),
        (lambda: "x" * 20000, "csr_pem: 20000 bytes is more than a CSR"),
        (lambda: _tampered(csr_pem(ec_key())), "csr_pem: the CSR's signature does not match"),
        (
            lambda: csr_pem(rsa.generate_private_key(65537, 1024)),
            "csr_pem: RSA 1024 bits is too short",
        ),
        (
            lambda: csr_pem(ec.generate_private_key(ec.SECP521R1())),
            "csr_pem: EC curve secp521r1 is not supported",
        ),
    ],
)
def test_bad_csrs_are_named(ca: MeshCA, make: object, expected: str) -> None:
    with pytest.raises(CSRError, match=expected.replace("(", r"\(")):
        issue_region_certificate(ca, make(), "eu", T0)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("hosts", "ips", "dns"),
    [
        ([], ["127.0.0.1", "::1"], ["localhost"]),
        (["0.0.0.0", "[::]"], ["127.0.0.1", "::1"], ["localhost"]),
        (["10.77.0.1"], ["10.77.0.1", "127.0.0.1", "::1"], ["localhost"]),
        (
            ["[fd00::1]", "CP.Example.com."],
            ["fd00::1", "127.0.0.1", "::1"],
            ["cp.example.com", "localhost"],
        ),
        (["127.0.0.1", "localhost"], ["127.0.0.1", "::1"], ["localhost"]),
    ],
)
def test_server_names(hosts: list[str], ips: list[str], dns: list[str]) -> None:
    names = server_names(hosts)
    assert [str(ip) for ip in names.ips] == ips and list(names.dns) == dns


@pytest.mark.parametrize("host", ["bad host", "-leading.example", "a..b", "x" * 64 + ".com"])
def test_server_names_refuse_what_is_no_host(host: str) -> None:
    with pytest.raises(ValueError, match="is neither an IP address nor a DNS name"):
        server_names([host])


def test_the_control_plane_certificate(ca: MeshCA) -> None:
    server = issue_server_certificate(ca, ["10.77.0.1", "cp.example"], T0)
    leaf = x509.load_pem_x509_certificate(server.certificate_pem)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://meshline/controlplane"
    ]
    assert sans.get_values_for_type(x509.DNSName) == ["cp.example", "localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == [
        "10.77.0.1",
        "127.0.0.1",
        "::1",
    ]
    key = load_pem_private_key(server.key_pem, password=None)
    assert key.public_key() == leaf.public_key()
    leaf.verify_directly_issued_by(ca.certificate)
    assert read_certificate_facts(server.certificate_pem).region is None
    # A new key each time: it lives in memory only and is made again at every start.
    assert issue_server_certificate(ca, [], T0).key_pem != server.key_pem
    assert "PRIVATE KEY" not in repr(server) and "serial=" in repr(server)  # no key in logs
