"""Which gRPC statuses read as a failed TLS handshake, for the CLI and the agent alike."""

from __future__ import annotations

import grpc
import pytest

from meshline.tls_failure import tls_handshake_failed

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
VERIFY_FAILED = (
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:7070: Ssl "
    "handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: CERTIFICATE_VERIFY_FAILED"
)
REFUSED = "failed to connect to all addresses; last error: UNKNOWN: Connection refused"


@pytest.mark.parametrize(
    ("code", "details", "name_mismatch_too", "failed"),
    [
        (UNAVAILABLE, VERIFY_FAILED, False, True),
        (UNAVAILABLE, "Handshake read failed", False, True),
        (UNAVAILABLE, "CERTIFICATE_VERIFY_FAILED", False, True),
        # Nothing answers: not a TLS failure.
        (UNAVAILABLE, REFUSED, False, False),
        (UNAVAILABLE, None, False, False),
        (UNAVAILABLE, "", True, False),
        # Only UNAVAILABLE is how gRPC reports a handshake that failed.
        (grpc.StatusCode.UNAUTHENTICATED, VERIFY_FAILED, False, False),
        (grpc.StatusCode.UNKNOWN, "handshake", True, False),
        # A certificate for another name counts only where the caller asks (a gateway's edge TLS).
        (UNAVAILABLE, "hostname mismatch", False, False),
        (UNAVAILABLE, "hostname mismatch", True, True),
        (UNAVAILABLE, VERIFY_FAILED, True, True),
    ],
)
def test_tls_handshake_failed(
    code: grpc.StatusCode, details: str | None, name_mismatch_too: bool, failed: bool
) -> None:
    assert tls_handshake_failed(code, details, name_mismatch_too=name_mismatch_too) is failed
