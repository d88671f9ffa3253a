"""A mesh CA and gateway certificates that come out byte-identical on every run, for the golden
files (which show certificates, never a private key) and `envoy --mode validate`.

Keys are derived from fixed numbers and signed with deterministic ECDSA (RFC 6979), so nothing
secret is stored in the repository and nothing changes between runs. They protect nothing.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from controlplane.ir.model import GatewayTls
from meshline import wire

NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2126, 1, 1, tzinfo=UTC)


def _key(label: str) -> ec.EllipticCurvePrivateKey:
    number = int.from_bytes(hashlib.sha256(label.encode()).digest(), "big") % (2**255) + 1
    return ec.derive_private_key(number, ec.SECP256R1())


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@functools.cache
def _ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key("golden mesh CA")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "golden mesh CA")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    return certificate, key


@functools.cache
def gateway_tls(region: str) -> GatewayTls:
    """`region`'s gateway certificate (URI SAN: its SPIFFE id), its key and the CA."""
    ca, ca_key = _ca()
    key = _key(f"golden gateway {region}")
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, region)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(wire.region_spiffe_id(region))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return GatewayTls(
        certificate_chain=_pem(certificate),
        private_key=private,
        trusted_ca=_pem(ca),
        serial="2",
        expires_at=NOT_AFTER.timestamp(),
    )


@functools.cache
def edge_tls_certificate(*names: str) -> GatewayTls:
    """A server certificate of the golden CA for `names` (DNS names and IPs), as the control
    plane makes for edge TLS from the mesh CA, with its key."""
    ca, ca_key = _ca()
    key = _key(f"golden edge {','.join(names)}")
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(3)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256(), ecdsa_deterministic=True)
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return GatewayTls(
        certificate_chain=_pem(certificate) + _pem(ca),
        private_key=private,
        serial="3",
        expires_at=NOT_AFTER.timestamp(),
    )
