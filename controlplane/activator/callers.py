"""Who may have a request held: a gateway of the mesh, known by its verified certificate.

The listeners ask every client for a certificate of the mesh CA at the TLS handshake, so a
plain-text client, one without a certificate and one with another CA's never reach a handler.
What a handler still decides (pure; table-tested): the certificate must name a region (the
control plane's own names none), and the region a request counts for is the one it names.

The gateway's route also names it (`x-meshline-gateway`, always overwritten with its own
region). A header naming another region is refused, not ignored: no gateway of the mesh sends
one, so it is a forgery or a broken config, and holding it for the certificate's region would
hide that.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshline.wire import GATEWAY_REGION_HEADER


@dataclass(frozen=True)
class CallerRefusal:
    """Why a caller with a mesh certificate may not have its request held (PERMISSION_DENIED
    / 403)."""

    message: str


def caller_gateway(certified: str | None, spiffe_id: str, claimed: str) -> str | CallerRefusal:
    """The region whose gateway sent the request: the one its certificate names (`certified`;
    None when it names no region, `spiffe_id` then says what it names). `claimed`: the
    `x-meshline-gateway` header ("" when absent)."""
    if certified is None:
        return CallerRefusal(
            f"the activator holds requests of gateways only: the client certificate names "
            f"{spiffe_id or 'no SPIFFE id'}, not a region"
        )
    if claimed and claimed != certified:
        return CallerRefusal(
            f"{GATEWAY_REGION_HEADER} names region '{claimed}', but the client certificate "
            f"is region '{certified}''s"
        )
    return certified
