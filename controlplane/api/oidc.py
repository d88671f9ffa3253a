"""An identity provider the control plane trusts for management calls (`--oidc-*` flags).

Its tokens are verified against its JWKS, read from a file (`--oidc-jwks-file`) and/or fetched
from a URL (`--oidc-jwks-uri`) and refreshed: every `refresh_s`, and at once (at most every
`min_refetch_s`) when a token names a key id not seen yet, so a provider's key rotation is
picked up without a restart. A fetch that fails keeps the last keys. The URL is https (http
only from a loopback host: jwks_checks.oidc_jwks_uri_problem), and a redirect is followed only
to a URL that would pass the same check, never from https to http.

The principal is `jwt:<issuer>#<sub>`; its management roles come from a claim (default
`meshline_roles`): `admin`, `deployer`, `viewer` (all environments) or `deployer:ENV`,
`viewer:ENV`, `admin:ENV` (one environment). Other values are ignored (a provider's tokens
carry roles of other applications too).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.client import HTTPMessage
from pathlib import Path
from typing import IO, Any

from controlplane.api.authz import MANAGEMENT_ROLES, Grant, Principal, PrincipalKind, Role
from controlplane.api.jwks_checks import oidc_jwks_uri_problem, redirect_problem
from controlplane.api.jwt_verify import (
    LEEWAY_S,
    ParsedToken,
    TokenError,
    VerifyKey,
    check_alg,
    check_times,
    keys_from_jwks,
    verify_signature,
)

log = logging.getLogger(__name__)

DEFAULT_ROLES_CLAIM = "meshline_roles"
JWT_PRINCIPAL_PREFIX = "jwt:"


@dataclass(frozen=True)
class OidcSettings:
    """What the flags say about the identity provider."""

    issuer: str
    audience: str
    jwks_file: Path | None = None
    jwks_uri: str = ""
    roles_claim: str = DEFAULT_ROLES_CLAIM
    refresh_s: float = 300.0
    min_refetch_s: float = 30.0


def principal_name(issuer: str, subject: str) -> str:
    return f"{JWT_PRINCIPAL_PREFIX}{issuer}#{subject}"


def grants_from_claim(value: object) -> tuple[Grant, ...]:
    """Grants named by a roles claim: a list of strings, or one string of space- or
    comma-separated values."""
    if isinstance(value, str):
        values: Sequence[object] = value.replace(",", " ").split()
    elif isinstance(value, list):
        values = value
    else:
        return ()
    grants: list[Grant] = []
    for item in values:
        if not isinstance(item, str):
            continue
        role, colon, environment = item.strip().partition(":")
        if role not in MANAGEMENT_ROLES or (colon and not environment):
            continue
        grant = Grant(Role(role), environment)
        if grant not in grants:
            grants.append(grant)
    return tuple(grants)


def audience_matches(claims: Mapping[str, Any], audience: str) -> bool:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return aud == audience
    if isinstance(aud, list):
        return audience in aud
    return False


def principal_of(
    parsed: ParsedToken, keys: Sequence[VerifyKey], settings: OidcSettings, now: float
) -> Principal:
    """The principal of a token of this provider: signature, issuer, audience, times, roles.
    Pure (keys and clock given); TokenError naming what is wrong."""
    claims = parsed.claims
    if claims.get("iss") != settings.issuer:
        raise TokenError(f"the token's issuer is not {settings.issuer!r}")
    check_alg(parsed)
    candidates = [k for k in keys if not parsed.kid or k.kid == parsed.kid]
    if not candidates:
        raise TokenError(
            f"no key of the identity provider has key id {parsed.kid!r} (its JWKS was refetched)"
        )
    errors = []
    for key in candidates:
        try:
            verify_signature(parsed, key)
            break
        except TokenError as exc:
            errors.append(str(exc))
    else:
        raise TokenError(errors[0])
    if not audience_matches(claims, settings.audience):
        raise TokenError(f"the token is not for audience {settings.audience!r}")
    expires = check_times(claims, now, LEEWAY_S, require_exp=True)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise TokenError("the token has no sub claim: it names no one")
    return Principal(
        principal_name(settings.issuer, subject),
        PrincipalKind.JWT,
        grants_from_claim(claims.get(settings.roles_claim)),
        expires,
    )


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only where jwks_checks.redirect_problem finds nothing wrong."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if problem := redirect_problem(req.full_url, newurl):
            raise urllib.error.HTTPError(newurl, code, f"redirect refused: {problem}", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_jwks(uri: str, context: ssl.SSLContext | None = None) -> str:
    """The JWKS document at `uri` (1 MiB at most); OSError when it cannot be had. `context`:
    the TLS settings (default: the system's trusted roots)."""
    if problem := oidc_jwks_uri_problem(uri):
        raise urllib.error.URLError(f"--oidc-jwks-uri {problem}")
    opener = urllib.request.build_opener(
        _CheckedRedirects, urllib.request.HTTPSHandler(context=context)
    )
    with opener.open(uri, timeout=10) as response:
        body: bytes = response.read(1 << 20)
    return body.decode()


class OidcProvider:
    """The provider's keys, kept fresh; `principal(parsed)` verifies one of its tokens."""

    def __init__(
        self,
        settings: OidcSettings,
        clock: Callable[[], float] = time.time,
        fetch: Callable[[str], str] = fetch_jwks,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._fetch = fetch
        self._file_keys: tuple[VerifyKey, ...] = ()
        self._uri_keys: tuple[VerifyKey, ...] = ()
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        if settings.jwks_file is not None:
            self._file_keys = keys_from_jwks(settings.jwks_file.read_text())

    @property
    def keys(self) -> tuple[VerifyKey, ...]:
        return (*self._file_keys, *self._uri_keys)

    async def refresh(self) -> None:
        """Fetch the JWKS URL now (the file is re-read too); failures keep the last keys."""
        async with self._lock:
            await self._refresh()

    async def _refresh(self) -> None:
        self._fetched_at = self._clock()
        if self.settings.jwks_file is not None:
            try:
                self._file_keys = keys_from_jwks(self.settings.jwks_file.read_text())
            except (OSError, ValueError) as exc:
                log.warning("cannot read the identity provider's JWKS file: %s", exc)
        if self.settings.jwks_uri:
            try:
                text = await asyncio.to_thread(self._fetch, self.settings.jwks_uri)
                self._uri_keys = keys_from_jwks(text)
            except (OSError, ValueError) as exc:
                log.warning(
                    "cannot fetch the identity provider's JWKS from %s: %s",
                    self.settings.jwks_uri,
                    exc,
                )

    async def run(self) -> None:
        """Refresh every `refresh_s` until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(self.settings.refresh_s)

    async def principal(self, parsed: ParsedToken) -> Principal:
        kid_known = any(k.kid == parsed.kid for k in self.keys) if parsed.kid else bool(self.keys)
        if not kid_known:
            async with self._lock:
                stale = self._clock() - self._fetched_at >= self.settings.min_refetch_s
                if stale and not any(k.kid == parsed.kid for k in self.keys):
                    await self._refresh()
        return principal_of(parsed, self.keys, self.settings, self._clock())
