"""Edge TLS on the agent's side: what it asks the control plane for in its hello, and, for the
user's own certificate (mode "files"), the checks before anything starts and the SDS file that
hands Envoy the files.

The SDS file names the certificate chain and key by `filename`: Envoy reads them itself and
watches their directory, so a user who replaces them (a rename: `mv`, certbot, cert-manager, a
Kubernetes secret volume) gets the new pair served with no restart. The SDS file holds paths
only, never key material. The decisions (which settings the flags make, what is wrong with a
pair of files) are pure; `write_sds_file` is the one write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from meshline.bind import is_loopback
from meshline.certs import CertificateFacts, certificate_facts
from meshline.edge_tls import FILES_SECRET, EdgeTlsMode, edge_names
from meshline.secret_file import write_public_file
from meshline.v1 import agent_pb2
from workers.agent.identity import SECRET_TYPE, key_matches

EDGE_DIR = "edge"
SDS_FILE = "edge-sds.yaml"


class EdgeTlsError(ValueError):
    """Edge TLS cannot be set up as asked; the message names the flag or the file."""


@dataclass(frozen=True)
class EdgeTlsSettings:
    """How the gateway serves TLS to clients (no settings: plain text).

    mesh-ca: `names` are what the control plane's certificate is for. files: the user's
    certificate chain and key (absolute paths, on this host)."""

    mode: EdgeTlsMode
    names: tuple[str, ...] = ()
    cert_file: Path | None = None
    key_file: Path | None = None


def edge_tls_settings(
    *,
    cert_file: Path | None,
    key_file: Path | None,
    from_mesh_ca: bool,
    tls_names: tuple[str, ...],
    host: str,
) -> EdgeTlsSettings | None:
    """The settings the agent's flags ask for; EdgeTlsError naming the flag that is wrong."""
    files = cert_file is not None or key_file is not None
    if files and from_mesh_ca:
        raise EdgeTlsError(
            "--tls-cert/--tls-key and --tls-from-mesh-ca: choose one source for the gateway's "
            "certificate"
        )
    if files:
        if cert_file is None or key_file is None:
            given, missing = ("--tls-cert", "--tls-key")
            if cert_file is None:
                given, missing = missing, given
            raise EdgeTlsError(f"{given} needs {missing} too (the certificate and its key)")
        if tls_names:
            raise EdgeTlsError(
                "--tls-name: only with --tls-from-mesh-ca (your own certificate names what it "
                "names)"
            )
        return EdgeTlsSettings(
            EdgeTlsMode.FILES, cert_file=cert_file.resolve(), key_file=key_file.resolve()
        )
    if not from_mesh_ca:
        if tls_names:
            raise EdgeTlsError("--tls-name: only with --tls-from-mesh-ca")
        return None
    # A gateway on loopback is dialled as `localhost` too (as the control plane's API is).
    local = ("localhost",) if is_loopback(host) else ()
    try:
        names = edge_names((host, *local, *tls_names))
    except ValueError as exc:
        raise EdgeTlsError(f"--tls-name: {exc}") from None
    if not names:
        raise EdgeTlsError(
            f"--tls-from-mesh-ca: the gateway listens on {host}, which names no address a client "
            "dials: give the names clients use with --tls-name (e.g. --tls-name gw.example.com)"
        )
    return EdgeTlsSettings(EdgeTlsMode.MESH_CA, names=names)


# -- the user's files -------------------------------------------------------------------------


def check_user_files(cert_file: Path, key_file: Path, now: datetime) -> CertificateFacts:
    """The facts of the user's certificate when the pair can be served now: both files
    readable, a PEM certificate (chain) and an unencrypted PEM private key that belongs to it,
    valid at `now`. EdgeTlsError naming the file and what is wrong otherwise."""
    certificate_pem = _read(cert_file, "--tls-cert")
    key_pem = _read(key_file, "--tls-key")
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    except ValueError:
        raise EdgeTlsError(
            f"--tls-cert {cert_file}: not a PEM certificate (-----BEGIN CERTIFICATE-----)"
        ) from None
    try:
        serialization.load_pem_private_key(key_pem.encode(), password=None)
    except TypeError:
        raise EdgeTlsError(
            f"--tls-key {key_file}: the key is encrypted; Envoy needs it unencrypted (0600)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise EdgeTlsError(f"--tls-key {key_file}: not a PEM private key") from None
    if not key_matches(certificate_pem, key_pem):
        raise EdgeTlsError(
            f"--tls-key {key_file}: not the key of the certificate in {cert_file} (its public "
            "key differs)"
        )
    facts = certificate_facts(certificate)
    if now >= facts.not_after:
        raise EdgeTlsError(
            f"--tls-cert {cert_file}: the certificate expired at {facts.not_after.isoformat()}"
        )
    if now < facts.not_before:
        raise EdgeTlsError(
            f"--tls-cert {cert_file}: the certificate is not valid before "
            f"{facts.not_before.isoformat()}"
        )
    return facts


def _read(path: Path, flag: str) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise EdgeTlsError(f"{flag} {path}: no such file") from None
    except IsADirectoryError:
        raise EdgeTlsError(f"{flag} {path}: a directory, not a file") from None
    except PermissionError:
        raise EdgeTlsError(f"{flag} {path}: the agent may not read it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeTlsError(f"{flag} {path}: cannot be read ({exc})") from None


def sds_yaml(cert_file: Path, key_file: Path) -> str:
    """The SDS file for mode "files": one Secret naming the user's files (paths only)."""
    secret = {
        "@type": SECRET_TYPE,
        "name": FILES_SECRET,
        "tls_certificate": {
            "certificate_chain": {"filename": str(cert_file)},
            "private_key": {"filename": str(key_file)},
        },
    }
    return yaml.safe_dump({"resources": [secret]}, sort_keys=False)


def sds_path(state_dir: Path) -> Path:
    return (state_dir / EDGE_DIR / SDS_FILE).resolve()


def write_sds_file(state_dir: Path, settings: EdgeTlsSettings) -> Path:
    """Write (by rename) the SDS file of mode "files" into the state dir; its path."""
    assert settings.cert_file is not None and settings.key_file is not None
    path = sds_path(state_dir)
    write_public_file(path, sds_yaml(settings.cert_file, settings.key_file))
    return path


def hello_edge_tls(settings: EdgeTlsSettings | None, sds_file: Path | None) -> agent_pb2.EdgeTls:
    """What the hello says (an empty message: plain text)."""
    if settings is None:
        return agent_pb2.EdgeTls()
    return agent_pb2.EdgeTls(
        mode=settings.mode.value,
        sds_path=str(sds_file) if sds_file is not None else "",
        names=list(settings.names),
    )
