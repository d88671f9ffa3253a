"""How a failed TLS handshake reads in a gRPC status, so that the CLI (to the control plane and
to a gateway) and the agent (joining, renewing) tell "the certificate is not trusted" apart from
"nothing answers" by the same words.

Bottom layer: the CLI and the workers both ask it; gRPC puts no code of its own on the failure,
only UNAVAILABLE and a text.
"""

from __future__ import annotations

import grpc

# What gRPC's details say when the peer's certificate is not one the channel trusts.
UNTRUSTED_CERTIFICATE_MARKERS = ("CERTIFICATE_VERIFY_FAILED", "handshake", "Handshake")
# What they say when the certificate does not name the host dialled (a gateway's edge TLS).
NAME_MISMATCH_MARKERS = ("hostname",)


def tls_handshake_failed(
    code: grpc.StatusCode, details: str | None, *, name_mismatch_too: bool = False
) -> bool:
    """Whether an RPC status says the TLS handshake failed: UNAVAILABLE with details naming an
    untrusted certificate (or, with `name_mismatch_too`, a certificate for another name)."""
    if code != grpc.StatusCode.UNAVAILABLE:
        return False
    markers = UNTRUSTED_CERTIFICATE_MARKERS + (NAME_MISMATCH_MARKERS if name_mismatch_too else ())
    return any(marker in (details or "") for marker in markers)
