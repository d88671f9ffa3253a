"""The mesh CA and the certificates it signs (regions' and the control plane's own), and the
edge CA, apart from it, that signs the certificates gateways serve clients.

Reading certificates and deciding when to renew them is shared with the agent, so it lives in
meshline.certs; this package holds what only the control plane does: keep the CA and sign.
"""

from controlplane.pki.ca import CA_KEY_FILE, CAError, MeshCA, SigningCA, UserCAFiles, open_ca
from controlplane.pki.edge_ca import EDGE_CA_KEY_FILE, EdgeCA, create_edge_ca, open_edge_ca
from controlplane.pki.issue import (
    REGION_CERT_LIFETIME,
    CSRError,
    IssuedCertificate,
    ServerCertificate,
    issue_region_certificate,
    issue_server_certificate,
)
from controlplane.pki.peer import PeerNotARegionError, PeerUnauthenticatedError, peer_region
from meshline.certs import CertificateFacts, read_certificate_facts, renew_at

__all__ = [
    "CA_KEY_FILE",
    "EDGE_CA_KEY_FILE",
    "REGION_CERT_LIFETIME",
    "CAError",
    "CSRError",
    "CertificateFacts",
    "EdgeCA",
    "IssuedCertificate",
    "MeshCA",
    "PeerNotARegionError",
    "PeerUnauthenticatedError",
    "ServerCertificate",
    "SigningCA",
    "UserCAFiles",
    "create_edge_ca",
    "issue_region_certificate",
    "issue_server_certificate",
    "open_ca",
    "open_edge_ca",
    "peer_region",
    "read_certificate_facts",
    "renew_at",
]
