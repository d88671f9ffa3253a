"""The control plane's CAs: its own (made once in its state dir) or one the user gives.

Two CAs have this shape: the mesh CA (here), which signs the mesh's identities, and the edge CA
(`edge_ca.py`), which signs the certificates gateways serve clients; no part of the mesh trusts
the second.

On disk in the state dir: `ca.key` (the CA's private key, the owner's only, from the first
byte) and `ca.crt` (its certificate: the mesh's trust bundle, public). With a user-supplied CA
the key stays where the user keeps it and only the trust bundle is copied into `ca.crt`, so
every process finds the CA to trust in one place.
"""

from __future__ import annotations

import logging
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from meshline.certs import key_matches_certificate
from meshline.secret_file import write_public_file, write_secret_file
from meshline.wire import CA_CERT_FILE, TRUST_DOMAIN

log = logging.getLogger(__name__)

CA_KEY_FILE = "ca.key"
CA_LIFETIME = timedelta(days=3652)  # ten years: the root everyone trusts changes rarely
# Certificates start this long before they are made, so a peer whose clock is a little behind
# does not refuse them as not yet valid.
CLOCK_SKEW = timedelta(minutes=5)
MIN_RSA_BITS = 2048
_CURVES: dict[str, type[hashes.SHA256 | hashes.SHA384]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
}

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CAError(Exception):
    """The CA cannot be used; the message names the file and what is wrong with it."""


@dataclass(frozen=True)
class CAFiles:
    """Where a CA of the control plane's own lives in its state dir, and how to name it in
    messages (`what`; `remade`: what making a new one costs)."""

    key: str
    certificate: str
    what: str
    remade: str


MESH_CA_FILES = CAFiles(CA_KEY_FILE, CA_CERT_FILE, "mesh CA", "every agent must then join again")


@dataclass(frozen=True)
class SigningCA:
    """A CA the control plane signs with (the mesh CA, or the edge CA), and what its clients
    trust."""

    certificate: x509.Certificate  # the CA that signs
    key: SigningKey
    # PEM of every CA certificate to trust (the user's file may hold a chain up to a root).
    bundle_pem: bytes
    # Certificates an issued leaf carries after itself: the signing CA and the intermediates
    # above it, when the signing CA is not itself a root (empty for meshline's own CA).
    chain: tuple[x509.Certificate, ...]
    user_supplied: bool

    @property
    def hash_algorithm(self) -> hashes.SHA256 | hashes.SHA384:
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return _CURVES[self.key.curve.name]()
        return hashes.SHA256()

    @property
    def expires_at(self) -> datetime:
        return self.certificate.not_valid_after_utc

    @property
    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)


# The mesh CA: what signs the mesh's identities (regions, the control plane), and what every
# process of the mesh trusts.
MeshCA = SigningCA


@dataclass(frozen=True)
class UserCAFiles:
    """A CA the user brings: its certificate (optionally followed by the chain up to a root)
    and its unencrypted private key (PEM)."""

    certificate: Path
    key: Path


def create_ca(now: datetime, common_name: str = f"{TRUST_DOMAIN} mesh CA") -> SigningCA:
    """A new self-signed EC P-256 CA valid for CA_LIFETIME."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRUST_DOMAIN),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_LIFETIME)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    return SigningCA(certificate, key, pem, (), user_supplied=False)


def open_ca(state_dir: Path, user: UserCAFiles | None, now: datetime) -> MeshCA:
    """The mesh CA: the user's (checked; its trust bundle copied to `ca.crt`), else the one in
    `state_dir`, made there on the first start."""
    if user is not None:
        ca = load_ca(user.certificate, user.key, now, user_supplied=True)
        write_public_file(state_dir / CA_CERT_FILE, ca.bundle_pem)
        log.info("mesh CA: user-supplied %s, expires %s", user.certificate, ca.expires_at)
        return ca
    return load_or_create_ca(state_dir, now)


def load_or_create_ca(
    state_dir: Path, now: datetime, files: CAFiles = MESH_CA_FILES, common_name: str = ""
) -> SigningCA:
    """The CA in `state_dir` (`files`: `ca.key`, `ca.crt` for the mesh CA), made there (named
    `common_name`, else the mesh CA's name) when neither file exists."""
    key_path, cert_path = state_dir / files.key, state_dir / files.certificate
    has_key, has_cert = key_path.exists(), cert_path.exists()
    if has_key and has_cert:
        return load_ca(cert_path, key_path, now, user_supplied=False)
    if has_cert:
        raise CAError(
            f"{cert_path} exists but {key_path} does not: the control plane was started with a "
            f"user-supplied {files.what} (pass its certificate and key again), or the key was "
            f"lost (remove {cert_path} to make a new {files.what}; {files.remade})"
        )
    if has_key:
        raise CAError(
            f"{key_path} exists but {cert_path} does not: restore {cert_path}, or remove "
            f"{key_path} to make a new {files.what} ({files.remade})"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    ca = create_ca(now, common_name) if common_name else create_ca(now)
    key_pem = ca.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key first: a certificate without its key is refused above.
    write_secret_file(key_path, key_pem.decode())
    write_public_file(cert_path, ca.bundle_pem)
    log.info("%s created in %s, expires %s", files.what, state_dir, ca.expires_at)
    return ca


def load_ca(cert_path: Path, key_path: Path, now: datetime, user_supplied: bool) -> SigningCA:
    """A CA from its PEM files, checked: a CA certificate that may sign certificates, valid at
    `now`, with a supported key that matches it. CAError naming the problem otherwise."""
    certificates = _read_certificates(cert_path)
    signing = certificates[0]
    key = _read_key(key_path)
    problems = ca_problems(signing, key, now)
    if problems:
        raise CAError(f"{cert_path}: " + "; ".join(problems))
    if key_path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s can be read by other users than its owner: chmod 600 it", key_path)
    chain = tuple(c for c in certificates if not _self_signed(c))
    bundle = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    return SigningCA(signing, key, bundle, chain, user_supplied)


def ca_problems(certificate: x509.Certificate, key: object, now: datetime) -> list[str]:
    """Why `certificate` with `key` cannot sign the mesh's certificates at `now` (empty: it
    can)."""
    problems = []
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        problems.append("the certificate is not a CA certificate (basicConstraints CA:TRUE)")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.key_cert_sign:
            problems.append("its key usage does not allow signing certificates (keyCertSign)")
    except x509.ExtensionNotFound:
        pass
    if now < certificate.not_valid_before_utc:
        problems.append(f"it is not valid before {certificate.not_valid_before_utc.isoformat()}")
    if now >= certificate.not_valid_after_utc:
        problems.append(f"it expired at {certificate.not_valid_after_utc.isoformat()}")
    if problem := key_problem(key):
        problems.append(f"its key: {problem}")
    elif not (isinstance(key, SigningKey) and key_matches_certificate(certificate, key)):
        problems.append("the private key does not match the certificate's public key")
    return problems


def key_problem(key: object) -> str | None:
    """Why `key` (private or public) is no key the mesh signs with or accepts, or None."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVES:
            return f"EC curve {key.curve.name} is not supported (use P-256 or P-384)"
        return None
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            return f"RSA {key.key_size} bits is too short (at least {MIN_RSA_BITS})"
        return None
    return f"{type(key).__name__.lstrip('_')} keys are not supported (use EC P-256 or RSA)"


def _self_signed(certificate: x509.Certificate) -> bool:
    if certificate.issuer != certificate.subject:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _read_certificates(path: Path) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CAError(f"cannot read the CA certificate {path}: {exc.strerror}") from None
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CAError(f"{path}: not a PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    return certificates


def _read_key(path: Path) -> object:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CAError(f"cannot read the CA key {path}: {exc.strerror}") from None
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise CAError(
            f"{path}: the key is encrypted; give it unencrypted (a file only its owner can read)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise CAError(f"{path}: not a PEM private key (-----BEGIN PRIVATE KEY-----)") from None
