"""The join token's text, `mlj_<id>.<secret>`, shared by the control plane (which mints and
checks it), the CLI (which prints it once) and the agent (which reads it from its environment).

The id is public (it is the JoinToken's name: listed, revoked, logged); the secret is 32 random
bytes, base64url without padding, of which the control plane keeps a SHA-256 only.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass

# Where the agent finds its join token: the environment, never argv (visible in `ps`).
JOIN_TOKEN_ENV = "MESHLINE_JOIN_TOKEN"
PREFIX = "mlj_"
ID_HEX_CHARS = 8
SECRET_BYTES = 32

_ID = re.compile(rf"^[0-9a-f]{{{ID_HEX_CHARS}}}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")  # 32 bytes, base64url, no padding


class JoinTokenFormatError(ValueError):
    """Text that is not a join token; the message never repeats the text (it may be a
    secret typed into the wrong place)."""


@dataclass(frozen=True)
class JoinTokenText:
    token_id: str
    secret: str

    def __str__(self) -> str:
        return f"{PREFIX}{self.token_id}.{self.secret}"


def id_problem(token_id: str) -> str | None:
    """Why `token_id` is not a join token id (8 lowercase hex digits), or None."""
    if _ID.match(token_id):
        return None
    return f"{token_id!r} is not a join token id ({ID_HEX_CHARS} hex digits, e.g. 3f9a0c1e)"


def mint() -> JoinTokenText:
    """A new random id and secret."""
    token_id = secrets.token_hex(ID_HEX_CHARS // 2)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode()
    return JoinTokenText(token_id, secret)


def parse(text: str) -> JoinTokenText:
    """The id and secret of `mlj_<id>.<secret>` (surrounding whitespace ignored)."""
    value = text.strip()
    if not value:
        raise JoinTokenFormatError("no join token given")
    if not value.startswith(PREFIX) or "." not in value:
        raise JoinTokenFormatError(
            f"not a join token: it should look like {PREFIX}<id>.<secret> "
            "(from `meshline regions token create REGION`)"
        )
    token_id, _, secret = value[len(PREFIX) :].partition(".")
    if not _ID.match(token_id):
        raise JoinTokenFormatError(
            f"not a join token: the id after {PREFIX} should be {ID_HEX_CHARS} hex digits"
        )
    if not _SECRET.match(secret):
        raise JoinTokenFormatError(
            f"join token {token_id}: the secret after the dot is not 43 base64url characters "
            "(was it cut when copied?)"
        )
    return JoinTokenText(token_id, secret)
