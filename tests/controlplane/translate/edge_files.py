"""Edge TLS from the user's files, for tests that hand Envoy a GatewayIR: the agent's SDS file
and the certificate and key it names, written under the test's own directory (Envoy reads the
SDS file, then the files it names, at the path the IR gives)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from controlplane.ir.model import EdgeTls, GatewayIR, GatewayTls
from meshline.edge_tls import EdgeTlsMode
from workers.agent.edge_tls import sds_yaml


def write_user_files(directory: Path, tls: GatewayTls, stem: str = "user") -> tuple[Path, Path]:
    """`tls`'s chain and key as a user keeps them (the key 0600); their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    cert = directory / f"{stem}.crt"
    key = directory / f"{stem}.key"
    cert.write_text(tls.certificate_chain)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(tls.private_key)
    return cert, key


def write_sds_file(directory: Path, cert: Path, key: Path) -> Path:
    """The SDS file the agent writes for mode "files", naming `cert` and `key`."""
    path = directory / "edge-sds.yaml"
    path.write_text(sds_yaml(cert, key))
    return path


def with_edge_files(ir: GatewayIR, directory: Path, tls: GatewayTls) -> GatewayIR:
    """`ir` with its files-mode edge TLS pointed at files written under `directory` (an IR
    without it comes back as it is)."""
    if ir.edge is None or ir.edge.mode is not EdgeTlsMode.FILES:
        return ir
    cert, key = write_user_files(directory, tls)
    path = write_sds_file(directory, cert, key)
    return replace(ir, edge=EdgeTls(EdgeTlsMode.FILES, sds_path=str(path)))
