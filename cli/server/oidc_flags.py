"""`meshline controlplane --oidc-*`: the identity provider whose tokens the management API
takes, checked before anything starts (every problem named by its flag)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controlplane.api.oidc import OidcSettings


def oidc_settings(
    issuer: str,
    audience: str,
    jwks_file: Path | None,
    jwks_uri: str,
    roles_claim: str,
) -> tuple[OidcSettings | None, list[str]]:
    """(OidcSettings or None when no issuer is given, problems). Pure but for reading the
    JWKS file."""
    from controlplane.api.jwks_checks import jwks_problems, oidc_jwks_uri_problem
    from controlplane.api.oidc import OidcSettings

    problems: list[str] = []
    if not issuer:
        given = [
            flag
            for flag, value in (
                ("--oidc-audience", audience),
                ("--oidc-jwks-file", jwks_file),
                ("--oidc-jwks-uri", jwks_uri),
            )
            if value
        ]
        if given:
            problems.append(f"{', '.join(given)} without --oidc-issuer: name the provider")
        return None, problems
    if not audience:
        problems.append("--oidc-audience is required with --oidc-issuer (the tokens' aud)")
    if jwks_file is None and not jwks_uri:
        problems.append("--oidc-issuer needs --oidc-jwks-file or --oidc-jwks-uri (its keys)")
    if jwks_uri and (problem := oidc_jwks_uri_problem(jwks_uri)):
        problems.append(f"--oidc-jwks-uri {problem}")
    if jwks_file is not None:
        try:
            text = jwks_file.read_text()
        except OSError as exc:
            problems.append(f"--oidc-jwks-file {jwks_file}: {exc.strerror}")
        else:
            problems.extend(f"--oidc-jwks-file {jwks_file}: {p}" for p in jwks_problems(text))
    if not roles_claim:
        problems.append("--oidc-roles-claim must name a claim")
    if problems:
        return None, problems
    return OidcSettings(issuer, audience, jwks_file, jwks_uri, roles_claim), []
