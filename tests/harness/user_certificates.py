"""A user's own certificates for edge TLS tests: a CA of the user's (no part of the mesh) that
signs server certificates for the names a gateway is dialled at, written as a user keeps them
(`tls.crt` chain, `tls.key` 0600), and a way to see which certificate a TLS port serves.

    ca = UserCA.create()
    pair = ca.issue(["127.0.0.1", "localhost"], lifetime=timedelta(days=2))
    cert, key = pair.write(tmp_path / "tls")
    assert served_certificate("127.0.0.1:8443").serial_number == pair.serial
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@dataclass(frozen=True)
class UserPair:
    """A certificate chain (leaf, then the CA) and its key, PEM."""

    chain_pem: str
    key_pem: str = field(repr=False)
    serial: int
    not_after: datetime

    def write(self, directory: Path, stem: str = "tls") -> tuple[Path, Path]:
        """`<stem>.crt` and `<stem>.key` (0600) in `directory`; their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        cert = directory / f"{stem}.crt"
        key = directory / f"{stem}.key"
        cert.write_text(self.chain_pem)
        write_private(key, self.key_pem)
        return cert, key


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


@dataclass(frozen=True)
class UserCA:
    """The user's own CA (a company's, a public one's stand-in)."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @staticmethod
    def create(name: str = "user CA") -> UserCA:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return UserCA(certificate, key)

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.pem)
        return path

    def issue(
        self,
        names: Sequence[str],
        *,
        lifetime: timedelta = timedelta(days=1),
        starts: datetime | None = None,
    ) -> UserPair:
        """A server certificate for `names` (IPs and DNS names) with a fresh key, valid for
        `lifetime` from `starts` (default: a minute ago; a past start makes an expired one)."""
        key = ec.generate_private_key(ec.SECP256R1())
        begin = starts or datetime.now(UTC) - timedelta(minutes=1)
        sans: list[x509.GeneralName] = []
        for name in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(begin)
            .not_valid_after(begin + lifetime)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        chain = certificate.public_bytes(serialization.Encoding.PEM).decode() + self.pem
        return UserPair(
            chain, _pem_key(key), certificate.serial_number, certificate.not_valid_after_utc
        )


def served_certificate(address: str, timeout_s: float = 5.0) -> x509.Certificate:
    """The certificate the TLS listener at `address` (host:port) presents, read without
    trusting it (OSError / ssl.SSLError when it serves no TLS)."""
    host, _, port = address.rpartition(":")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, int(port)), timeout=timeout_s) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)
