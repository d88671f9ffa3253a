"""The mesh CA: made once in the state dir (key owner-only), loaded again after, or the user's
own, checked with errors that name the file and the problem."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from controlplane.pki.ca import CA_KEY_FILE, CAError, UserCAFiles, load_ca, open_ca
from meshline.wire import CA_CERT_FILE
from tests.controlplane.pki.builders import T0, Issuer, ca_certificate, ec_key, write_pem


def test_first_start_makes_a_ca_and_later_starts_load_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    old = os.umask(0)  # the key is owner-only however open the umask
    try:
        ca = open_ca(state, None, T0)
    finally:
        os.umask(old)
    assert not ca.user_supplied and ca.chain == ()
    assert stat.S_IMODE((state / CA_KEY_FILE).stat().st_mode) == 0o600
    assert (state / CA_CERT_FILE).read_bytes() == ca.bundle_pem
    constraints = ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert ca.certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey) and ca.key.curve.name == "secp256r1"
    lifetime = ca.certificate.not_valid_after_utc - T0
    assert timedelta(days=3650) <= lifetime <= timedelta(days=3653)
    assert ca.certificate.not_valid_before_utc < T0  # a peer a little behind accepts it

    again = open_ca(state, None, T0 + timedelta(days=30))
    assert again.certificate == ca.certificate
    assert sorted(p.name for p in state.iterdir()) == [CA_CERT_FILE, CA_KEY_FILE]


def test_half_a_ca_in_the_state_dir_is_refused(tmp_path: Path) -> None:
    open_ca(tmp_path, None, T0)
    key = (tmp_path / CA_KEY_FILE).read_bytes()
    (tmp_path / CA_KEY_FILE).unlink()
    with pytest.raises(CAError, match=r"ca.key does not: .* user-supplied mesh CA"):
        open_ca(tmp_path, None, T0)
    (tmp_path / CA_KEY_FILE).write_bytes(key)
    (tmp_path / CA_CERT_FILE).unlink()
    with pytest.raises(CAError, match=r"ca.crt does not: restore .*ca.crt, or remove"):
        open_ca(tmp_path, None, T0)
    assert [p.name for p in tmp_path.iterdir()] == [CA_KEY_FILE]  # nothing made over it


def test_a_user_ca_signs_and_its_bundle_is_published(tmp_path: Path) -> None:
    key = ec_key()
    cert_path, key_path = write_pem(tmp_path, [ca_certificate(key)], key)
    state = tmp_path / "state"
    ca = open_ca(state, UserCAFiles(cert_path, key_path), T0)
    assert ca.user_supplied and ca.chain == ()
    assert (state / CA_CERT_FILE).read_bytes() == cert_path.read_bytes() == ca.bundle_pem
    assert not (state / CA_KEY_FILE).exists()  # the user's key stays where the user keeps it
    # Started once with the user's CA, the state dir alone is not enough to start again.
    with pytest.raises(CAError, match="user-supplied mesh CA"):
        open_ca(state, None, T0)


def test_an_intermediate_user_ca_hands_out_its_chain(tmp_path: Path) -> None:
    root_key, key = ec_key(), ec_key()
    root = ca_certificate(root_key, name="root")
    intermediate = ca_certificate(key, name="intermediate", issuer=Issuer(root, root_key))
    cert_path, key_path = write_pem(tmp_path, [intermediate, root], key)
    ca = load_ca(cert_path, key_path, T0, user_supplied=True)
    assert ca.certificate == intermediate and ca.chain == (intermediate,)
    assert x509.load_pem_x509_certificates(ca.bundle_pem) == [intermediate, root]


def _user_ca_error(tmp_path: Path, certificate: x509.Certificate, key: object) -> str:
    cert_path, key_path = write_pem(tmp_path, [certificate], key)  # type: ignore[arg-type]
    with pytest.raises(CAError) as caught:
        load_ca(cert_path, key_path, T0, user_supplied=True)
    message = str(caught.value)
    assert message.startswith(str(cert_path))
    return message


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ({"is_ca": False}, "is not a CA certificate (basicConstraints CA:TRUE)"),
        ({"is_ca": None}, "is not a CA certificate"),
        ({"key_cert_sign": False}, "does not allow signing certificates (keyCertSign)"),
        ({"not_after": T0 - timedelta(seconds=1)}, "it expired at 2029-12-31T23:59:59+00:00"),
        ({"not_before": T0 + timedelta(days=1)}, "it is not valid before 2030-01-02"),
    ],
)
def test_user_ca_certificate_problems_are_named(
    tmp_path: Path, variant: dict[str, object], expected: str
) -> None:
    key = ec_key()
    assert expected in _user_ca_error(tmp_path, ca_certificate(key, **variant), key)  # type: ignore[arg-type]


def test_a_key_that_is_not_the_certificates_is_refused(tmp_path: Path) -> None:
    message = _user_ca_error(tmp_path, ca_certificate(ec_key()), ec_key())
    assert "the private key does not match the certificate's public key" in message


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (rsa.generate_private_key(65537, 1024), "RSA 1024 bits is too short (at least 2048)"),
        (ec.generate_private_key(ec.SECP521R1()), "EC curve secp521r1 is not supported"),
        (ed25519.Ed25519PrivateKey.generate(), "Ed25519PrivateKey keys are not supported"),
    ],
)
def test_unsupported_user_ca_keys_are_named(tmp_path: Path, key: object, expected: str) -> None:
    assert expected in _user_ca_error(tmp_path, ca_certificate(key), key)  # type: ignore[arg-type]


def test_a_strong_rsa_user_ca_is_accepted(tmp_path: Path) -> None:
    key = rsa.generate_private_key(65537, 2048)
    cert_path, key_path = write_pem(tmp_path, [ca_certificate(key)], key)
    assert isinstance(load_ca(cert_path, key_path, T0, user_supplied=True).key, rsa.RSAPrivateKey)


def test_unreadable_user_ca_files_are_named(tmp_path: Path) -> None:
    key = ec_key()
    cert_path, key_path = write_pem(tmp_path, [ca_certificate(key)], key, password=b"pw")
    with pytest.raises(CAError, match="the key is encrypted; give it unencrypted"):
        load_ca(cert_path, key_path, T0, user_supplied=True)
    key_path.write_text("not a key")
    with pytest.raises(CAError, match=r"user-ca.key: not a PEM private key"):
        load_ca(cert_path, key_path, T0, user_supplied=True)
    cert_path.write_text("not a certificate")
    with pytest.raises(CAError, match=r"user-ca.crt: not a PEM certificate"):
        load_ca(cert_path, key_path, T0, user_supplied=True)
    with pytest.raises(CAError, match=r"cannot read the CA certificate .*missing.crt"):
        load_ca(tmp_path / "missing.crt", key_path, T0, user_supplied=True)
