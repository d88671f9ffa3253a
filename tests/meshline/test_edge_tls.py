"""The edge TLS vocabulary the agent, the control plane and the CLI share."""

from __future__ import annotations

import pytest

from meshline.edge_tls import EdgeTlsMode, edge_names, edge_tls_mode


@pytest.mark.parametrize(
    ("text", "mode"),
    [("", None), ("mesh-ca", EdgeTlsMode.MESH_CA), ("files", EdgeTlsMode.FILES)],
)
def test_edge_tls_mode(text: str, mode: EdgeTlsMode | None) -> None:
    assert edge_tls_mode(text) is mode


def test_an_unknown_mode_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="'acme' is not one of 'mesh-ca', 'files'"):
        edge_tls_mode("acme")


@pytest.mark.parametrize(
    ("given", "names"),
    [
        (["10.0.0.2"], ("10.0.0.2",)),
        (["0.0.0.0", "gw.example.com"], ("gw.example.com",)),  # a wildcard bind names nothing
        (["::"], ()),
        (["[::1]", "GW.Example.com.", "gw.example.com"], ("::1", "gw.example.com")),
        (["127.0.0.1", "localhost", "127.0.0.1"], ("127.0.0.1", "localhost")),
    ],
)
def test_edge_names(given: list[str], names: tuple[str, ...]) -> None:
    assert edge_names(given) == names


@pytest.mark.parametrize("bad", ["gw_1.example.com", "-gw.example.com", "", "a/b", "x" * 64])
def test_edge_names_refuse_what_is_no_name(bad: str) -> None:
    with pytest.raises(ValueError, match="neither an IP address nor a DNS name"):
        edge_names(["10.0.0.2", bad])
