"""Which API key `meshline infer` sends: the one lookup, shared by every inference command.

`--api-key`, else `$MESHLINE_API_KEY`, else the key `meshline up` wrote for its demo
(`.meshline/api-key`), else none (the gateway then answers 401 unless the deployment lets
anonymous callers in). The key goes out as `authorization: Bearer <key>`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from cli.client.api import DEFAULT_STATE_DIR

API_KEY_FILE = "api-key"  # in the state dir: `meshline up` writes its demo key there (0600)
API_KEY_ENV = "MESHLINE_API_KEY"
AUTHORIZATION_HEADER = "authorization"


class KeySource(str, Enum):
    OPTION = "--api-key"
    ENVIRONMENT = f"${API_KEY_ENV}"
    FILE = "file"
    NONE = "none"


@dataclass(frozen=True)
class ApiKey:
    """The key to send (empty: none) and where it came from, for an error message."""

    secret: str
    source: KeySource
    path: Path | None = None  # FILE: which file

    @property
    def where(self) -> str:
        if self.source is KeySource.FILE:
            return str(self.path)
        return self.source.value

    def headers(self) -> list[tuple[str, str]]:
        """The request headers (gRPC metadata) that carry the key; none without one."""
        return [(AUTHORIZATION_HEADER, f"Bearer {self.secret}")] if self.secret else []


def resolve_api_key(
    explicit: str | None,
    state_dir: Path = DEFAULT_STATE_DIR,
    environ: Mapping[str, str] | None = None,
) -> ApiKey:
    """--api-key, else $MESHLINE_API_KEY, else `<state_dir>/api-key`, else no key."""
    env = os.environ if environ is None else environ
    if explicit:
        return ApiKey(explicit.strip(), KeySource.OPTION)
    if value := env.get(API_KEY_ENV, "").strip():
        return ApiKey(value, KeySource.ENVIRONMENT)
    recorded = state_dir / API_KEY_FILE
    try:
        secret = recorded.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return ApiKey("", KeySource.NONE)
    if secret:
        return ApiKey(secret, KeySource.FILE, recorded)
    return ApiKey("", KeySource.NONE)


def missing_key_hint(key: ApiKey) -> str:
    """What to add to a 401 when no key was sent, or which key was refused."""
    if key.source is KeySource.NONE:
        return (
            f"no API key was sent: pass --api-key, set ${API_KEY_ENV}, or run from the "
            f"directory of `meshline up` (it writes {DEFAULT_STATE_DIR / API_KEY_FILE})"
        )
    return f"the API key from {key.where} was refused"
