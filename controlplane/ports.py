"""The control plane's two ports and the names its certificate carries.

The API port serves TLS to anyone (management calls carry a token; Join carries a join
token). The mesh port asks every caller for a client certificate of the mesh CA (agent
streams, Renew, Envoy's ADS, artifact downloads). Two ports because grpc cannot ask for a
client certificate on some calls of a port only: it is required of every connection or of
none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from controlplane.pki import MeshCA, ServerCertificate


@dataclass(frozen=True)
class HostPort:
    host: str  # without brackets
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def split_address(address: str) -> HostPort:
    """`host:port` or `[v6]:port`; ValueError naming what is wrong."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return HostPort(host, int(port))


def default_mesh_listen(listen: str) -> str:
    """The mesh port when none is given: the API's host, the API's port + 1."""
    api = split_address(listen)
    return str(HostPort(api.host, api.port + 1))


def advertised_mesh_address(mesh_listen: str, advertise_hosts: Sequence[str]) -> str:
    """What Join tells agents the mesh port is: on the first advertised host when there is
    one, else where it listens (an agent replaces a 0.0.0.0 there with the host it reached
    the API at)."""
    mesh = split_address(mesh_listen)
    host = advertise_hosts[0] if advertise_hosts else mesh.host
    return str(HostPort(host, mesh.port))


def certificate_hosts(listen: str, mesh_listen: str, advertise_hosts: Sequence[str]) -> list[str]:
    """The hosts the server certificate names (issue_server_certificate adds loopback)."""
    hosts = [split_address(listen).host, split_address(mesh_listen).host, *advertise_hosts]
    return list(dict.fromkeys(hosts))


def api_credentials(certificate: ServerCertificate) -> grpc.ServerCredentials:
    """TLS, no client certificate asked."""
    return grpc.ssl_server_credentials([(certificate.key_pem, certificate.certificate_pem)])


def mesh_credentials(certificate: ServerCertificate, ca: MeshCA) -> grpc.ServerCredentials:
    """TLS that refuses every client without a certificate of the mesh CA."""
    return grpc.ssl_server_credentials(
        [(certificate.key_pem, certificate.certificate_pem)],
        root_certificates=ca.bundle_pem,
        require_client_auth=True,
    )
