"""The agent's mesh identity: its region's certificate and key, kept in its state dir.

After a join (enrollment.py) the agent holds, under `<state>/identity/`:
- `identity.json` (0600): the key, the certificate chain, where the mesh port is and when the
  certificate came, in one file replaced by rename, so key and certificate always match;
- `ca.crt`: the mesh CA bundle it trusts (public);
- `envoy-sds.yaml` (0600): the same key and certificate as one SDS `Secret` that the region's
  Envoy reads for its ADS connection (and watches: a rename makes it reload, no restart).

The decisions (start from what is stored or join, when to renew, where the mesh port is) are
pure functions; the rest reads and writes those files.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshline.certs import (
    CertificateFacts,
    key_matches_certificate,
    read_certificate_facts,
    renew_at,
)
from meshline.secret_file import write_public_file, write_secret_file

log = logging.getLogger(__name__)

IDENTITY_DIR = "identity"
IDENTITY_FILE = "identity.json"
CA_FILE = "ca.crt"
ENVOY_SDS_FILE = "envoy-sds.yaml"
# The name of the one Secret in envoy-sds.yaml (the bootstrap's ADS cluster asks for it).
ENVOY_SECRET_NAME = "meshline_region_identity"
SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


@dataclass(frozen=True)
class Identity:
    """A region's certificate (chain PEM) and key (PEM, never shown), where to reach the mesh
    port with it, and when it arrived (renewal counts from then: certificates are backdated
    for clock skew)."""

    region: str
    certificate_pem: str
    key_pem: str = field(repr=False)
    mesh_address: str
    received_at: datetime

    @property
    def facts(self) -> CertificateFacts:
        return read_certificate_facts(self.certificate_pem)

    @property
    def expires_at(self) -> datetime:
        return self.facts.not_after

    @property
    def renew_at(self) -> datetime:
        return renew_at(min(self.received_at, self.facts.not_after), self.facts.not_after)

    def valid_at(self, now: datetime) -> bool:
        facts = self.facts
        return facts.not_before <= now < facts.not_after


@dataclass(frozen=True)
class IdentityPaths:
    """Where the identity's files live in an agent's state dir."""

    directory: Path

    @staticmethod
    def of(state_dir: Path) -> IdentityPaths:
        return IdentityPaths(state_dir / IDENTITY_DIR)

    @property
    def identity(self) -> Path:
        return self.directory / IDENTITY_FILE

    @property
    def ca(self) -> Path:
        return self.directory / CA_FILE

    @property
    def envoy_sds(self) -> Path:
        return self.directory / ENVOY_SDS_FILE


# -- decisions ------------------------------------------------------------------------------


class Start(Enum):
    USE_STORED = "use-stored"  # a certificate of this region, valid now: no token needed
    JOIN = "join"  # trade the join token for a certificate
    NO_TOKEN = "no-token"  # nothing valid stored and no token: cannot start


@dataclass(frozen=True)
class StartDecision:
    start: Start
    reason: str


def decide_start(
    stored: Identity | None, region: str, now: datetime, have_token: bool
) -> StartDecision:
    """Start from the stored certificate while it is valid for `region`; else join with the
    token; else refuse, saying why."""
    if stored is not None and stored.region == region and stored.valid_at(now):
        return StartDecision(
            Start.USE_STORED,
            f"certificate {stored.facts.serial} of region {region} is valid until "
            f"{stored.expires_at.isoformat()}",
        )
    if stored is None:
        why = "no certificate stored yet"
    elif stored.region != region:
        why = f"the stored certificate is region {stored.region}'s, not {region}'s"
    else:
        why = f"the stored certificate expired at {stored.expires_at.isoformat()}"
    if have_token:
        return StartDecision(Start.JOIN, f"{why}: joining with the join token")
    return StartDecision(Start.NO_TOKEN, why)


def renewal_delay_s(identity: Identity, now: datetime) -> float:
    """Seconds until `identity` is due for renewal (0 when it is due already)."""
    return max((identity.renew_at - now).total_seconds(), 0.0)


def mesh_target(mesh_address: str, api_address: str) -> str:
    """Where to dial the mesh port: the address the control plane gave, with an unspecified
    host (it listens on every address: 0.0.0.0, ::) replaced by the host the agent reached
    its API at."""
    host, sep, port = mesh_address.rpartition(":")
    if not sep:
        return mesh_address
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        unspecified = ipaddress.ip_address(bare).is_unspecified
    except ValueError:
        unspecified = False
    if not unspecified:
        return mesh_address
    api_host = api_address.rpartition(":")[0]
    return f"{api_host}:{port}"


def key_matches(certificate_pem: str, key_pem: str) -> bool:
    """Whether the key is the one the certificate was issued for."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        return False
    return key_matches_certificate(certificate, key)


# -- files ----------------------------------------------------------------------------------


def load_identity(paths: IdentityPaths) -> Identity | None:
    """The stored identity, or None when there is none or it is unusable (logged)."""
    try:
        data = json.loads(paths.identity.read_text())
        identity = Identity(
            region=str(data["region"]),
            certificate_pem=str(data["certificate_pem"]),
            key_pem=str(data["key_pem"]),
            mesh_address=str(data["mesh_address"]),
            received_at=datetime.fromtimestamp(float(data["received_at"]), UTC),
        )
        identity.facts  # noqa: B018 - a certificate that cannot be read is no identity
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring the stored identity %s: %s", paths.identity, exc)
        return None
    if not key_matches(identity.certificate_pem, identity.key_pem):
        log.warning("ignoring the stored identity %s: its key does not match", paths.identity)
        return None
    return identity


def save_identity(paths: IdentityPaths, identity: Identity, ca_pem: str) -> None:
    """Store the identity and the CA it chains to, then hand Envoy the new certificate."""
    write_public_file(paths.ca, ca_pem)
    body = {
        "region": identity.region,
        "mesh_address": identity.mesh_address,
        "received_at": identity.received_at.timestamp(),
        "certificate_pem": identity.certificate_pem,
        "key_pem": identity.key_pem,
    }
    write_secret_file(paths.identity, json.dumps(body, indent=2) + "\n")
    write_secret_file(paths.envoy_sds, envoy_sds_yaml(identity))


def envoy_sds_yaml(identity: Identity) -> str:
    """The SDS file Envoy's ADS cluster reads its client certificate from: one Secret with
    the chain and the key inline, so both change in one rename."""
    secret = {
        "@type": SECRET_TYPE,
        "name": ENVOY_SECRET_NAME,
        "tls_certificate": {
            "certificate_chain": {"inline_string": identity.certificate_pem},
            "private_key": {"inline_string": identity.key_pem},
        },
    }
    return yaml.safe_dump({"resources": [secret]}, sort_keys=False)
