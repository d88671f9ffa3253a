"""The CLI's side of edge TLS: when `meshline infer` speaks TLS to a gateway and which CA it
trusts, what `get regions` shows, and the https examples `meshline up --edge-tls` prints."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from cli.client.gateway import Trust, edge_ca_beside, edge_trust, wants_tls
from cli.client.infer import ClientTls
from cli.client.render import edge_tls_cell, regions_table
from cli.server.up import _print_endpoints
from meshline.v1 import resources_pb2

EDGE = Path("/state/controlplane/edge-ca.crt")
MINE = Path("/etc/ssl/my-ca.pem")
SYSTEM = Trust(None, "the system's trusted CAs")


@pytest.mark.parametrize(
    ("edge_tls", "ca_file", "edge_ca", "trust"),
    [
        ("mesh-ca", None, EDGE, Trust(EDGE, f"the control plane's edge CA ({EDGE})")),
        ("mesh-ca", MINE, EDGE, Trust(MINE, f"--ca-file {MINE}")),
        (
            "mesh-ca",
            None,
            None,
            Trust(None, "the system's trusted CAs (no edge-ca.crt beside the control plane's CA)"),
        ),
        # The user's own certificate: not the edge CA's, whatever is beside the API's CA.
        ("files", None, EDGE, SYSTEM),
        ("files", MINE, EDGE, Trust(MINE, f"--ca-file {MINE}")),
        ("", None, EDGE, SYSTEM),
    ],
)
def test_edge_trust(
    edge_tls: str, ca_file: Path | None, edge_ca: Path | None, trust: Trust
) -> None:
    assert edge_trust(edge_tls, ca_file, edge_ca) == trust


def test_the_edge_ca_is_found_beside_the_control_planes_ca_never_in_its_place(
    tmp_path: Path,
) -> None:
    api_ca = tmp_path / "ca.crt"
    api_ca.write_text("mesh CA")
    assert edge_ca_beside(None) is None
    assert edge_ca_beside(api_ca) is None  # the mesh CA vouches for no gateway
    (tmp_path / "edge-ca.crt").write_text("edge CA")
    assert edge_ca_beside(api_ca) == tmp_path / "edge-ca.crt"


@pytest.mark.parametrize(
    ("flag", "edge_tls", "ca_file", "tls"),
    [
        (None, "mesh-ca", None, True),  # the region says so
        (None, "files", None, True),
        (None, "", None, False),  # plain text, or a --gateway given without more
        (None, "", MINE, True),  # a CA for the gateway means TLS
        (True, "", None, True),
        (False, "mesh-ca", None, False),  # --plaintext: the user's word
    ],
)
def test_wants_tls(flag: bool | None, edge_tls: str, ca_file: Path | None, tls: bool) -> None:
    assert wants_tls(flag, edge_tls, ca_file) is tls


def test_an_untrusted_gateway_says_which_trust_failed_and_what_to_give() -> None:
    error = ClientTls(None, "the mesh CA (ca.crt)").untrusted("10.0.0.2:8443", "bad cert")
    assert "no TLS connection to gateway 10.0.0.2:8443" in str(error)
    assert "not one the mesh CA (ca.crt) vouches for, or does not name 10.0.0.2" in str(error)
    assert "--ca-file" in str(error) and "(bad cert)" in str(error)


def _region(name: str, edge_tls: str = "", expires: str = "") -> resources_pb2.Region:
    region = resources_pb2.Region()
    region.metadata.name = name
    region.status.gateway_address = "127.0.0.1:8081"
    region.status.edge_tls = edge_tls
    region.status.edge_certificate_expires_at = expires
    return region


def test_get_regions_shows_what_clients_of_each_gateway_get() -> None:
    assert edge_tls_cell(_region("a").status) == "-"
    served = _region("b", "mesh-ca", "2026-12-08T10:00:00Z").status
    assert edge_tls_cell(served) == "mesh-ca until 2026-12-08T10:00:00Z"
    out = io.StringIO()
    Console(file=out, width=250).print(
        regions_table([_region("eu", "files", "2027-01-01T00:00:00Z"), _region("us")])
    )
    rows = {line.split()[0]: line for line in out.getvalue().splitlines() if line.strip()}
    assert "EDGE TLS" in rows["NAME"]
    assert "files until 2027-01-01T00:00:00Z" in rows["eu"]


@pytest.mark.parametrize("edge", [False, True])
def test_up_prints_the_examples_clients_need(edge: bool) -> None:
    out = io.StringIO()
    ca = Path("/work/.meshline/controlplane/edge-ca.crt")
    _print_endpoints(
        Console(file=out, width=300),
        "127.0.0.1:7070",
        [_region("eu")],
        Path("/work/.meshline/demo.yaml"),
        "secret",
        Path("/work/.meshline/api-key"),
        ca if edge else None,
    )
    text = out.getvalue()
    if edge:
        assert f"clients trust the edge CA {ca}" in text
        assert f"curl -s --cacert {ca} https://127.0.0.1:8081/v2/models/demo" in text
        assert f'ssl=True, root_certificates="{ca}"' in text
        assert "http://" not in text
    else:
        assert "curl -s http://127.0.0.1:8081/v2/models/demo" in text
        assert "ssl=True" not in text and "edge CA" not in text
    assert 'headers={"authorization": f"Bearer {key}"}' in text
