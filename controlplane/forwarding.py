"""The tokens gateways put on the requests they forward to each other.

A gateway serves a request carrying the hop marker from its own workers, without checking the
caller again: the entry gateway did. A client must not be able to claim that, so each region's
gateway sends a token on what it forwards, and every gateway accepts only its peers' tokens.
Each token is derived from one secret kept in the control plane's state directory (never in
the store): HMAC(secret, region). Envoy configs necessarily hold the tokens (to send and to
compare); mTLS between gateways replaces them in a later step.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

SECRET_BYTES = 32
# The secret's file in the control plane's state directory.
SECRET_FILE = "forwarding.key"


def load_or_create_secret(path: Path) -> bytes:
    """The forwarding secret in `path`, made (readable by the owner only) on first use."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    secret = secrets.token_bytes(SECRET_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret.hex())
    return secret


def forward_tokens(secret: bytes, regions: Iterable[str]) -> dict[str, str]:
    """Each region's token: the same for a region as long as the secret is."""
    return {
        region: hmac.new(secret, f"forward:{region}".encode(), hashlib.sha256).hexdigest()
        for region in sorted(set(regions))
    }
