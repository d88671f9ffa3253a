"""Certificates the mesh CA signs: a region's (from the agent's CSR) and the control plane's own.

The control plane decides every identity: a CSR only proves that the caller holds a key, and
its subject and SANs are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controlplane.pki.ca import CLOCK_SKEW, MeshCA, SigningCA, key_problem
from meshline.certs import CertificateFacts, certificate_facts
from meshline.host_names import IPAddress, dialled_name
from meshline.wire import CONTROLPLANE_SPIFFE_ID, TRUST_DOMAIN, region_spiffe_id

REGION_CERT_LIFETIME = timedelta(hours=24)
# Re-issued at every start; long enough that a control plane that runs for months keeps one.
SERVER_CERT_LIFETIME = timedelta(days=365)
MAX_CSR_BYTES = 16 * 1024
# Names every server certificate carries, so local clients can dial it however they like.
LOCAL_NAMES = ("127.0.0.1", "::1", "localhost")

# A mesh identity is both: the agent and Envoy call the control plane and each other with it.
MESH_USAGES = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)


class CSRError(ValueError):
    """A CSR that cannot be signed; the message says why (never the CSR itself)."""


@dataclass(frozen=True)
class IssuedCertificate:
    """A signed certificate: PEM of the leaf followed by the CA chain it needs, and its facts."""

    certificate_pem: str
    facts: CertificateFacts


@dataclass(frozen=True)
class ServerCertificate:
    """The control plane's own TLS certificate (chain PEM) and its private key (PEM, in memory
    only: it is made again at every start)."""

    certificate_pem: bytes
    key_pem: bytes = field(repr=False)
    facts: CertificateFacts


@dataclass(frozen=True)
class ServerNames:
    """The SANs of a server certificate, without repeats, in the order given."""

    ips: tuple[IPAddress, ...]
    dns: tuple[str, ...]


def parse_csr(csr_pem: str) -> x509.CertificateSigningRequest:
    """A CSR whose signature proves its key, with a key the mesh accepts; CSRError otherwise."""
    if not csr_pem.strip():
        raise CSRError("csr_pem: no CSR given")
    if len(csr_pem) > MAX_CSR_BYTES:
        raise CSRError(f"csr_pem: {len(csr_pem)} bytes is more than a CSR ({MAX_CSR_BYTES} max)")
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError:
        raise CSRError(
            "csr_pem: not a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----)"
        ) from None
    try:
        public_key = csr.public_key()
    except ValueError:
        raise CSRError("csr_pem: the CSR's public key cannot be read") from None
    if problem := key_problem(public_key):
        raise CSRError(f"csr_pem: {problem}")
    if not csr.is_signature_valid:
        raise CSRError("csr_pem: the CSR's signature does not match its public key")
    return csr


def issue_region_certificate(
    ca: MeshCA,
    csr_pem: str,
    region: str,
    now: datetime,
    lifetime: timedelta = REGION_CERT_LIFETIME,
) -> IssuedCertificate:
    """Region `region`'s certificate for the CSR's key: URI SAN = the region's SPIFFE id, for
    TLS clients and servers alike (agent → control plane, gateway ↔ gateway). CSRError for a
    bad CSR."""
    csr = parse_csr(csr_pem)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRUST_DOMAIN),
            x509.NameAttribute(NameOID.COMMON_NAME, region),
        ]
    )
    names = [x509.UniformResourceIdentifier(region_spiffe_id(region))]
    certificate = _sign(ca, csr.public_key(), subject, names, now, lifetime)
    return IssuedCertificate(_chain_pem(ca, certificate).decode(), certificate_facts(certificate))


def issue_server_certificate(
    ca: MeshCA,
    hosts: Sequence[str],
    now: datetime,
    lifetime: timedelta = SERVER_CERT_LIFETIME,
) -> ServerCertificate:
    """A fresh key and certificate for the control plane: its hosts (IP or DNS), the local
    names, and URI SAN = the control plane's SPIFFE id. ValueError naming a bad host."""
    key = ec.generate_private_key(ec.SECP256R1())
    names = server_names(hosts)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRUST_DOMAIN),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{TRUST_DOMAIN} control plane"),
        ]
    )
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(CONTROLPLANE_SPIFFE_ID)]
    sans += [x509.DNSName(name) for name in names.dns]
    sans += [x509.IPAddress(ip) for ip in names.ips]
    certificate = _sign(ca, key.public_key(), subject, sans, now, lifetime)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return ServerCertificate(_chain_pem(ca, certificate), key_pem, certificate_facts(certificate))


def server_names(hosts: Iterable[str]) -> ServerNames:
    """The SANs for a server reached at `hosts` (listen hosts and advertised names; brackets
    around IPv6 allowed), plus the local names. An unspecified address (0.0.0.0, ::) names no
    host a client dials, so it is left out. ValueError naming a host that is neither an IP
    address nor a DNS name."""
    ips: dict[IPAddress, None] = {}
    dns: dict[str, None] = {}
    for given in (*hosts, *LOCAL_NAMES):
        name = dialled_name(given)
        if isinstance(name, str):
            dns[name] = None
        elif name is not None:
            ips[name] = None
    return ServerNames(tuple(ips), tuple(dns))


def _sign(
    ca: SigningCA,
    public_key: object,
    subject: x509.Name,
    names: Sequence[x509.GeneralName],
    now: datetime,
    lifetime: timedelta,
    usages: Sequence[x509.ObjectIdentifier] = MESH_USAGES,
) -> x509.Certificate:
    if lifetime <= timedelta(0):
        raise ValueError(f"a certificate's lifetime must be positive, not {lifetime}")
    assert isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
    # A leaf never outlives the CA that vouches for it.
    not_after = min(now + lifetime, ca.certificate.not_valid_after_utc)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_id(ca), critical=False)
        .sign(ca.key, ca.hash_algorithm)
    )


def _authority_key_id(ca: SigningCA) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _chain_pem(ca: SigningCA, leaf: x509.Certificate) -> bytes:
    return leaf.public_bytes(serialization.Encoding.PEM) + ca.chain_pem
