"""Where the mesh's own surfaces listen: loopback unless the user says otherwise.

Only the gateway's inference listener and the control plane's API port face the network by
default. Envoy's admin (it serves `/config_dump` and `POST /quitquitquit`), the workers (reached
only by their own region's Envoy, on the same host) and the activator listen on loopback; a flag
exposes each one explicitly. Envoy takes only IP literals (admin address, EDS endpoints), so
these are checked here before anything starts.
"""

from __future__ import annotations

import ipaddress

LOOPBACK = "127.0.0.1"


def ip_literal_problem(flag: str, value: str, *, wildcard_ok: bool) -> str | None:
    """Why `value` cannot be the bind address of `flag`, or None.

    `wildcard_ok`: the surface is only bound, never advertised to other hosts, so 0.0.0.0 / ::
    (every address of this host) is fine; an advertised address must be one others can reach.
    """
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return f"{flag} {value!r}: expected an IP address, e.g. {LOOPBACK} (not a host name)"
    if address.is_unspecified and not wildcard_ok:
        return (
            f"{flag} {value!r}: other hosts connect to this address, so it must be one of this "
            "host's addresses, not a wildcard"
        )
    return None


def reachable_host(bind_host: str) -> str:
    """The address a process on this host connects to for a socket bound to `bind_host`: the
    address itself, or loopback for a wildcard."""
    try:
        address = ipaddress.ip_address(bind_host)
    except ValueError:
        return bind_host
    if address.is_unspecified:
        return "::1" if address.version == 6 else LOOPBACK
    return bind_host


def is_loopback(host: str) -> bool:
    """True for loopback: 127.0.0.0/8, ::1 or `localhost`; no other name is resolved."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"
