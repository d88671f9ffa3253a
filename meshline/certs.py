"""Mesh certificates as both sides read them: an agent makes its key and CSR, the control plane
signs it; both read a certificate's identity and lifetime, and decide when to renew it.

In the bottom layer because the agent (workers) and the control plane (controlplane.pki) share
it: one reading of a SPIFFE id, one renewal rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import NameOID

from meshline.wire import region_spiffe_id

# What every region's SPIFFE id starts with; the rest is the region's name.
_REGION_ID_PREFIX = region_spiffe_id("")
# The share of a certificate's lifetime after which its holder asks for a new one.
RENEW_AFTER_FRACTION = 2 / 3


@dataclass(frozen=True)
class KeyAndCsr:
    """A fresh private key (PKCS#8 PEM, for its owner only) and a CSR for it (PEM)."""

    key_pem: bytes = field(repr=False)
    csr_pem: str


@dataclass(frozen=True)
class CertificateFacts:
    """What the mesh reads in a certificate: who it names and when it is valid."""

    spiffe_id: str  # "" when it names none
    serial: str  # lowercase hex, no separators
    not_before: datetime  # UTC
    not_after: datetime  # UTC

    @property
    def region(self) -> str | None:
        """The region it was issued to, or None (the control plane's, or a foreign one)."""
        return region_of_spiffe_id(self.spiffe_id)


def new_key_and_csr(common_name: str = "meshline") -> KeyAndCsr:
    """An EC P-256 key and a CSR signed with it. The control plane decides the identity in the
    certificate; the CSR only proves that the caller holds the key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyAndCsr(key_pem, csr.public_bytes(serialization.Encoding.PEM).decode())


def public_key_der(key: PublicKeyTypes) -> bytes:
    """A public key as SubjectPublicKeyInfo DER: two keys are the same key when these are
    equal."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_matches_certificate(certificate: x509.Certificate, key: PrivateKeyTypes) -> bool:
    """Whether `key` is the private key of the public key `certificate` was issued for."""
    return public_key_der(key.public_key()) == public_key_der(certificate.public_key())


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def region_of_spiffe_id(spiffe_id: str) -> str | None:
    """`eu` for `spiffe://meshline/region/eu`; None for any other id."""
    if not spiffe_id.startswith(_REGION_ID_PREFIX):
        return None
    region = spiffe_id[len(_REGION_ID_PREFIX) :]
    return region if region and "/" not in region else None


def spiffe_id_of(cert: x509.Certificate) -> str:
    """The certificate's SPIFFE id (its one `spiffe://` URI SAN), or "" when it has none.
    ValueError when it names several: an X.509-SVID names exactly one."""
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    ids = [uri for uri in names.get_values_for_type(x509.UniformResourceIdentifier)]
    spiffe = [uri for uri in ids if uri.startswith("spiffe://")]
    if len(spiffe) > 1:
        raise ValueError(f"the certificate names {len(spiffe)} SPIFFE ids: {', '.join(spiffe)}")
    return spiffe[0] if spiffe else ""


def certificate_facts(cert: x509.Certificate) -> CertificateFacts:
    return CertificateFacts(
        spiffe_id=spiffe_id_of(cert),
        serial=serial_hex(cert.serial_number),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def read_certificate_facts(pem: str | bytes) -> CertificateFacts:
    """Facts of the first certificate of a PEM chain; ValueError when there is none."""
    data = pem.encode() if isinstance(pem, str) else pem
    return certificate_facts(x509.load_pem_x509_certificate(data))


def renew_at(not_before: datetime, not_after: datetime) -> datetime:
    """When to ask for a new certificate: two thirds into its lifetime, so a renewal that
    fails has a third of the lifetime left to be retried. ValueError for a lifetime that ends
    before it starts."""
    lifetime = not_after - not_before
    if lifetime.total_seconds() < 0:
        raise ValueError(f"the lifetime ends ({not_after}) before it starts ({not_before})")
    return not_before + lifetime * RENEW_AFTER_FRACTION
