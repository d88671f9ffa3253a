"""Mesh identities for tests that talk to the control plane's ports as agents do: a region's
certificate signed by a CA (the mesh's, or a stranger's), and gRPC credentials holding it.

    ca = control_plane_ca(cp_state_dir)          # a running control plane's CA
    eu = region_identity(ca, "eu")
    record_identity(store, eu)                   # in-process: as if eu had joined
    channel = grpc.aio.secure_channel(mesh_address, mesh_credentials(ca.bundle_pem, eu))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from controlplane.pki import MeshCA, issue_region_certificate, issue_server_certificate
from controlplane.pki.ca import CA_KEY_FILE, create_ca, load_ca
from controlplane.store import Store
from controlplane.store.region_certificates import RegionCertificate, record_certificate
from meshline.certs import new_key_and_csr, read_certificate_facts
from meshline.wire import CA_CERT_FILE

LIFETIME = timedelta(hours=1)


@dataclass(frozen=True)
class RegionIdentity:
    """A certificate chain (PEM) and its key (PEM)."""

    region: str
    chain_pem: str
    key_pem: str = field(repr=False)


def control_plane_ca(controlplane_state_dir: Path) -> MeshCA:
    """The CA a control plane (process) made in its state dir."""
    return load_ca(
        controlplane_state_dir / CA_CERT_FILE,
        controlplane_state_dir / CA_KEY_FILE,
        datetime.now(UTC),
        user_supplied=False,
    )


def stranger_ca() -> MeshCA:
    """A CA of its own: no mesh trusts what it signs."""
    return create_ca(datetime.now(UTC))


def region_identity(ca: MeshCA, region: str, lifetime: timedelta = LIFETIME) -> RegionIdentity:
    """Region `region`'s certificate from `ca` (as Join would issue it) and its fresh key."""
    made = new_key_and_csr(f"{region} test")
    issued = issue_region_certificate(ca, made.csr_pem, region, datetime.now(UTC), lifetime)
    return RegionIdentity(region, issued.certificate_pem, made.key_pem.decode())


def record_identity(store: Store, identity: RegionIdentity) -> None:
    """Make `identity` its region's certificate of record in `store`, as its Join would."""
    facts = read_certificate_facts(identity.chain_pem)
    now = datetime.now(UTC).timestamp()
    record = RegionCertificate(identity.region, facts.serial, facts.not_after.timestamp(), now)
    record_certificate(store, record)


def server_identity(ca: MeshCA) -> tuple[bytes, bytes]:
    """(key, chain) of a control plane's server certificate for 127.0.0.1, signed by `ca`."""
    own = issue_server_certificate(ca, ["127.0.0.1"], datetime.now(UTC))
    return own.key_pem, own.certificate_pem


def mesh_credentials(
    trusted_pem: bytes, identity: RegionIdentity | None
) -> grpc.ChannelCredentials:
    """TLS trusting `trusted_pem`, showing `identity`'s certificate (none: no client cert)."""
    if identity is None:
        return grpc.ssl_channel_credentials(root_certificates=trusted_pem)
    return grpc.ssl_channel_credentials(
        root_certificates=trusted_pem,
        private_key=identity.key_pem.encode(),
        certificate_chain=identity.chain_pem.encode(),
    )
