"""The names a server certificate is made for: the hosts its clients dial, as IP addresses and
DNS names.

One reading of "a host a client dials" for the control plane's own certificate and a gateway's
edge certificate, so both accept and refuse the same names with the same words.
"""

from __future__ import annotations

import ipaddress
import re

# A DNS label: letters, digits and hyphens, 1 to 63 of them, no hyphen at either end.
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_MAX_DNS_NAME = 253

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_dns_name(name: str) -> bool:
    """Whether `name` (trailing dots allowed) is a DNS name: dot-separated labels, 253
    characters at most."""
    bare = name.rstrip(".")
    return 0 < len(bare) <= _MAX_DNS_NAME and all(
        _DNS_LABEL.match(label) for label in bare.split(".")
    )


def dialled_name(given: str) -> IPAddress | str | None:
    """The name a certificate carries for a host clients dial at `given` (surrounding space and
    brackets around IPv6 allowed): its IP address, or its DNS name lowercased without trailing
    dots; None for an unspecified address (0.0.0.0, ::), which no client dials. ValueError
    naming `given` when it is neither an IP address nor a DNS name."""
    host = given.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not is_dns_name(host):
            raise ValueError(f"{given!r} is neither an IP address nor a DNS name") from None
        return host.lower().rstrip(".")
    return None if ip.is_unspecified else ip
