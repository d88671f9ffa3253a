"""Which control plane the CLI talks to, and with which token: the one lookup every management
command shares (cli/client/api.py uses it), like kubectl's.

Address: `--address`, else `$MESHLINE_ADDRESS`, else the server of `--context NAME` or of the
current context, else what `meshline up` recorded (`.meshline/controlplane.addr`), else the
default.

Token: `--token`, else `$MESHLINE_TOKEN`, else `--context NAME`'s, else the context for that
address (the current context when it names that server, else the one that does: a context's
token is never sent to another server), else, for the control plane `meshline up` runs from
this directory, the admin token it wrote (`.meshline/controlplane/admin-token`), else none.

CA (the API port speaks TLS): the context's certificate-authority, else, for the control plane
`meshline up` runs from this directory, the mesh CA it made (`.meshline/controlplane/ca.crt`),
else none (the system's trusted roots: a control plane with a certificate from a public CA).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from cli.client.contexts import CredentialsFile, config_path, load
from meshline.wire import ADMIN_TOKEN_FILE, AUTHORIZATION_HEADER, CA_CERT_FILE, TOKEN_ENV

ADDRESS_ENV = "MESHLINE_ADDRESS"
ADDRESS_FILE = "controlplane.addr"  # in the state dir of `meshline up`
CONTROLPLANE_DIR = "controlplane"  # the control plane's state dir inside it
FALLBACK_ADDRESS = "127.0.0.1:7070"


class TokenSource(StrEnum):
    OPTION = "--token"
    ENVIRONMENT = f"${TOKEN_ENV}"
    CONTEXT = "context"
    ADMIN_FILE = "admin-token"
    NONE = "none"


@dataclass(frozen=True)
class CredentialFlags:
    """The global `--token` and `--context` options (`meshline --context prod get ...`)."""

    token: str | None = None
    context: str | None = None


@dataclass(frozen=True)
class ApiCredential:
    """The token to send (empty: none), where it came from, and the CA to check the server's
    TLS certificate with (None: the system's trusted roots)."""

    token: str = field(repr=False)
    source: TokenSource
    where: str = ""  # the context's name and file, or the token file
    certificate_authority: Path | None = None

    def describe(self) -> str:
        if self.source in (TokenSource.CONTEXT, TokenSource.ADMIN_FILE):
            return self.where
        return self.source.value

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return ((AUTHORIZATION_HEADER, f"Bearer {self.token}"),) if self.token else ()


NO_CREDENTIAL = ApiCredential("", TokenSource.NONE)


def resolve_server(
    explicit: str | None,
    flags: CredentialFlags,
    contexts: CredentialsFile,
    state_dir: Path,
    environ: Mapping[str, str],
) -> str:
    if explicit:
        return explicit
    if env := environ.get(ADDRESS_ENV, "").strip():
        return env
    named = contexts.get(flags.context) if flags.context else contexts.current
    if named is not None and named.server:
        return named.server
    recorded = state_dir / ADDRESS_FILE
    try:
        if text := recorded.read_text().strip():
            return text
    except (FileNotFoundError, NotADirectoryError):
        pass
    return FALLBACK_ADDRESS


def _ca(path: str, base: Path) -> Path | None:
    if not path:
        return None
    ca = Path(path).expanduser()
    return ca if ca.is_absolute() else base.parent / ca


def _recorded_here(state_dir: Path, address: str) -> bool:
    """Whether `address` is the control plane `meshline up` runs from `state_dir`."""
    try:
        return (state_dir / ADDRESS_FILE).read_text().strip() == address
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return False


def local_ca(state_dir: Path, address: str) -> Path | None:
    """The mesh CA of the control plane `meshline up` runs from `state_dir`, when that is the
    one at `address`."""
    path = state_dir / CONTROLPLANE_DIR / CA_CERT_FILE
    return path.resolve() if _recorded_here(state_dir, address) and path.is_file() else None


def resolve_credential(
    address: str,
    flags: CredentialFlags,
    contexts: CredentialsFile,
    contexts_path: Path,
    state_dir: Path,
    environ: Mapping[str, str],
) -> ApiCredential:
    """The token for `address` (see the module's docstring for the order)."""
    # A CA comes with the context of the server even when the token comes from elsewhere.
    chosen = contexts.get(flags.context) if flags.context else contexts.for_server(address)
    ca = _ca(chosen.certificate_authority, contexts_path) if chosen is not None else None
    ca = ca or local_ca(state_dir, address)
    if flags.token:
        return ApiCredential(flags.token.strip(), TokenSource.OPTION, certificate_authority=ca)
    if value := environ.get(TOKEN_ENV, "").strip():
        return ApiCredential(value, TokenSource.ENVIRONMENT, certificate_authority=ca)
    if chosen is not None and chosen.token:
        where = f"context '{chosen.name}' of {contexts_path}"
        return ApiCredential(chosen.token, TokenSource.CONTEXT, where, ca)
    token_file = state_dir / CONTROLPLANE_DIR / ADMIN_TOKEN_FILE
    try:
        token = token_file.read_text().strip() if _recorded_here(state_dir, address) else ""
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        token = ""
    if token:
        return ApiCredential(token, TokenSource.ADMIN_FILE, str(token_file), ca)
    return ApiCredential("", TokenSource.NONE, certificate_authority=ca)


@dataclass(frozen=True)
class Lookup:
    """Everything the lookup reads, read once: the environment and the credentials file."""

    flags: CredentialFlags
    environ: Mapping[str, str]
    contexts: CredentialsFile
    contexts_path: Path
    state_dir: Path

    @staticmethod
    def read(flags: CredentialFlags, state_dir: Path) -> Lookup:
        environ = dict(os.environ)
        path = config_path(environ)
        return Lookup(flags, environ, load(path), path, state_dir)

    def server(self, explicit: str | None) -> str:
        return resolve_server(explicit, self.flags, self.contexts, self.state_dir, self.environ)

    def credential(self, address: str) -> ApiCredential:
        return resolve_credential(
            address, self.flags, self.contexts, self.contexts_path, self.state_dir, self.environ
        )


def unauthenticated_hint(credential: ApiCredential, address: str) -> str:
    """What to say when the control plane refused the call for its credential."""
    if credential.source is TokenSource.NONE:
        return (
            f"no token for {address}: pass --token, set ${TOKEN_ENV}, or run "
            f"`meshline login --address {address}` (it saves a context for that server)"
        )
    return (
        f"the token from {credential.describe()} was refused; get a working one and run "
        f"`meshline login --address {address}`"
    )
