"""The one reading of the names a server certificate is made for (the control plane's own and
a gateway's edge certificate both use it)."""

from __future__ import annotations

import ipaddress

import pytest

from meshline.host_names import dialled_name, is_dns_name


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("localhost", True),
        ("gw-1.example.com", True),
        ("example.com.", True),  # fully qualified
        ("x" * 63 + ".com", True),
        (".".join(["a" * 63] * 4)[:253], True),
        ("", False),
        (".", False),
        ("a..b", False),
        ("-gw.example.com", False),
        ("gw-.example.com", False),
        ("gw_1.example.com", False),
        ("x" * 64 + ".com", False),
        (".".join(["a" * 63] * 4), False),  # 255 characters
        ("bad host", False),
    ],
)
def test_is_dns_name(name: str, valid: bool) -> None:
    assert is_dns_name(name) is valid


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("10.0.0.2", ipaddress.ip_address("10.0.0.2")),
        (" [fd00::1] ", ipaddress.ip_address("fd00::1")),
        ("GW.Example.com.", "gw.example.com"),
        ("0.0.0.0", None),
        ("[::]", None),
    ],
)
def test_dialled_name(given: str, name: object) -> None:
    assert dialled_name(given) == name


@pytest.mark.parametrize("bad", ["", "a/b", "gw_1.example.com", "[gw.example.com"])
def test_what_is_no_name_is_named_in_the_error(bad: str) -> None:
    with pytest.raises(ValueError) as refused:
        dialled_name(bad)
    assert str(refused.value) == f"{bad!r} is neither an IP address nor a DNS name"
