"""The edge CA: a CA of its own beside the mesh CA (made once in the state dir, key owner-only,
loaded again after) or the user's, and never one the mesh trusts: the mesh CA itself, a CA with
its key, or one it issued are refused at start, naming the file."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from controlplane.pki.ca import CA_KEY_FILE, CAError, UserCAFiles, open_ca
from controlplane.pki.edge_ca import (
    EDGE_CA_KEY_FILE,
    create_edge_ca,
    open_edge_ca,
    shared_trust_problem,
)
from meshline.edge_tls import EDGE_CA_CERT_FILE
from meshline.wire import CA_CERT_FILE
from tests.controlplane.pki.builders import T0, Issuer, ca_certificate, ec_key, write_pem


def _folder(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    return folder


def test_first_start_makes_an_edge_ca_beside_the_mesh_ca_and_later_starts_load_it(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    mesh = open_ca(state, None, T0)
    old = os.umask(0)  # the key is owner-only however open the umask
    try:
        edge = open_edge_ca(state, None, mesh, T0)
    finally:
        os.umask(old)
    assert stat.S_IMODE((state / EDGE_CA_KEY_FILE).stat().st_mode) == 0o600
    assert (state / EDGE_CA_CERT_FILE).read_bytes() == edge.signing.bundle_pem
    assert (state / CA_CERT_FILE).read_bytes() == mesh.bundle_pem != edge.signing.bundle_pem
    assert edge.signing.certificate.subject.rfc4514_string() == "CN=meshline edge CA,O=meshline"
    assert edge.signing.certificate.extensions.get_extension_for_class(
        x509.BasicConstraints
    ).value.ca
    assert shared_trust_problem(mesh, edge.signing) is None

    again = open_edge_ca(state, None, mesh, T0 + timedelta(days=30))
    assert again.signing.certificate == edge.signing.certificate
    assert sorted(p.name for p in state.iterdir()) == sorted(
        [CA_CERT_FILE, CA_KEY_FILE, EDGE_CA_CERT_FILE, EDGE_CA_KEY_FILE]
    )


def test_half_an_edge_ca_in_the_state_dir_is_refused_naming_the_edge_ca(tmp_path: Path) -> None:
    mesh = open_ca(tmp_path, None, T0)
    open_edge_ca(tmp_path, None, mesh, T0)
    (tmp_path / EDGE_CA_KEY_FILE).unlink()
    with pytest.raises(CAError, match=r"edge-ca.key does not: .* user-supplied edge CA"):
        open_edge_ca(tmp_path, None, mesh, T0)
    assert not (tmp_path / EDGE_CA_KEY_FILE).exists()  # nothing made over it


def test_a_user_edge_ca_signs_and_its_bundle_is_published(tmp_path: Path) -> None:
    key = ec_key()
    cert_path, key_path = write_pem(_folder(tmp_path, "user"), [ca_certificate(key)], key)
    state = tmp_path / "state"
    mesh = open_ca(state, None, T0)
    edge = open_edge_ca(state, UserCAFiles(cert_path, key_path), mesh, T0)
    assert edge.signing.user_supplied
    assert (state / EDGE_CA_CERT_FILE).read_bytes() == cert_path.read_bytes()
    assert not (state / EDGE_CA_KEY_FILE).exists()  # the user's key stays where the user keeps it


def test_the_mesh_ca_is_refused_as_the_edge_ca(tmp_path: Path) -> None:
    state = tmp_path / "state"
    mesh = open_ca(state, None, T0)
    user = UserCAFiles(state / CA_CERT_FILE, state / CA_KEY_FILE)
    with pytest.raises(CAError, match=r"ca.crt: .* has the key of a CA the mesh trusts"):
        open_edge_ca(state, user, mesh, T0)
    assert not (state / EDGE_CA_CERT_FILE).exists()


def test_a_user_mesh_ca_and_an_edge_ca_under_it_are_refused(tmp_path: Path) -> None:
    """The mesh CA is the user's root; the edge CA one it issued: the mesh would trust every
    edge certificate, so the control plane does not start."""
    root_key, edge_key = ec_key(), ec_key()
    root = ca_certificate(root_key, name="company root")
    issued = ca_certificate(edge_key, name="company edge", issuer=Issuer(root, root_key))
    mesh_cert, mesh_key = write_pem(_folder(tmp_path, "mesh"), [root], root_key)
    edge_cert, edge_key_path = write_pem(_folder(tmp_path, "edge"), [issued], edge_key)
    state = tmp_path / "state"
    mesh = open_ca(state, UserCAFiles(mesh_cert, mesh_key), T0)
    with pytest.raises(CAError, match="issued by 'CN=company root', which the mesh trusts"):
        open_edge_ca(state, UserCAFiles(edge_cert, edge_key_path), mesh, T0)
    assert not (state / EDGE_CA_CERT_FILE).exists()


def test_separate_cas_share_no_trust() -> None:
    mesh = create_edge_ca(T0).signing  # any CA of its own
    assert shared_trust_problem(mesh, create_edge_ca(T0).signing) is None
    assert shared_trust_problem(mesh, mesh) is not None
