"""Bind addresses: which values a flag accepts, and where a bound socket is reached."""

from __future__ import annotations

import pytest

from meshline.bind import LOOPBACK, ip_literal_problem, is_loopback, reachable_host


@pytest.mark.parametrize(
    ("value", "wildcard_ok", "problem"),
    [
        ("127.0.0.1", False, None),
        ("10.77.0.2", False, None),
        ("::1", False, None),
        ("0.0.0.0", True, None),
        ("::", True, None),
        ("0.0.0.0", False, "not a wildcard"),
        ("::", False, "not a wildcard"),
        ("localhost", True, "expected an IP address"),
        ("", True, "expected an IP address"),
        ("10.77.0.2:80", True, "expected an IP address"),
    ],
)
def test_ip_literal_problem(value: str, wildcard_ok: bool, problem: str | None) -> None:
    found = ip_literal_problem("--admin-host", value, wildcard_ok=wildcard_ok)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found and "--admin-host" in found


@pytest.mark.parametrize(
    ("bind", "reached"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("10.77.0.2", "10.77.0.2"),
        ("0.0.0.0", LOOPBACK),
        ("::", "::1"),
        ("::1", "::1"),
    ],
)
def test_a_wildcard_is_reached_on_loopback(bind: str, reached: str) -> None:
    assert reachable_host(bind) == reached


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("10.77.0.2", False),
        ("0.0.0.0", False),
        ("gateway.example", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
