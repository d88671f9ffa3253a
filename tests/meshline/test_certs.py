"""The certificate helpers the agent and the control plane share: renewal time, SPIFFE ids,
and a fresh key and CSR."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from meshline.certs import (
    key_matches_certificate,
    new_key_and_csr,
    region_of_spiffe_id,
    renew_at,
    spiffe_id_of,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lifetime", "expected"),
    [
        (timedelta(hours=24), timedelta(hours=16)),
        (timedelta(seconds=30), timedelta(seconds=20)),
        (timedelta(days=3652), timedelta(days=3652) * 2 / 3),
        (timedelta(0), timedelta(0)),  # nothing to wait for: renew at once
    ],
)
def test_renew_at_two_thirds_into_the_lifetime(lifetime: timedelta, expected: timedelta) -> None:
    assert renew_at(T0, T0 + lifetime) == T0 + expected


def test_renew_at_refuses_a_lifetime_that_ends_before_it_starts() -> None:
    with pytest.raises(ValueError, match=r"ends .* before it starts"):
        renew_at(T0, T0 - timedelta(seconds=1))


@pytest.mark.parametrize(
    ("spiffe_id", "region"),
    [
        ("spiffe://meshline/region/eu", "eu"),
        ("spiffe://meshline/region/us-east-1", "us-east-1"),
        ("spiffe://meshline/controlplane", None),
        ("spiffe://meshline/region/", None),
        ("spiffe://meshline/region/eu/extra", None),
        ("spiffe://other/region/eu", None),
        ("", None),
    ],
)
def test_region_of_spiffe_id(spiffe_id: str, region: str | None) -> None:
    assert region_of_spiffe_id(spiffe_id) == region


def _certificate(
    uris: list[str], key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None
) -> x509.Certificate:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "t")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(T0)
        .not_valid_after(T0 + timedelta(days=1))
    )
    if uris:
        sans = [x509.UniformResourceIdentifier(u) for u in uris]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256())


def test_spiffe_id_of_a_certificate() -> None:
    assert spiffe_id_of(_certificate(["spiffe://meshline/region/eu"])) == (
        "spiffe://meshline/region/eu"
    )
    assert spiffe_id_of(_certificate(["https://example.com"])) == ""
    assert spiffe_id_of(_certificate([])) == ""
    with pytest.raises(ValueError, match="names 2 SPIFFE ids"):
        spiffe_id_of(_certificate(["spiffe://meshline/region/eu", "spiffe://meshline/region/us"]))


def test_new_key_and_csr_is_signed_by_its_key() -> None:
    made = new_key_and_csr()
    csr = x509.load_pem_x509_csr(made.csr_pem.encode())
    key = load_pem_private_key(made.key_pem, password=None)
    assert csr.is_signature_valid
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert csr.public_key() == key.public_key()
    assert "PRIVATE KEY" not in repr(made) and "CERTIFICATE REQUEST" in repr(made)  # no key


@pytest.mark.parametrize(
    "new_key",
    [
        lambda: ec.generate_private_key(ec.SECP256R1()),
        lambda: ec.generate_private_key(ec.SECP384R1()),
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ],
)
def test_a_key_matches_only_the_certificate_issued_for_it(
    new_key: Callable[[], ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey],
) -> None:
    key = new_key()
    certificate = _certificate([], key)
    assert key_matches_certificate(certificate, key)
    assert not key_matches_certificate(certificate, new_key())
    assert not key_matches_certificate(_certificate([]), key)
