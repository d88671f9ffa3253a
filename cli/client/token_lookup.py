"""Which control plane the CLI talks to, and with which token: the one lookup every management
command shares (cli/client/api.py uses it), like kubectl's.

Address: `--address`, else `$MESHLINE_ADDRESS`, else the server of `--context NAME` or of the
current context, else the control plane `meshline up` runs from this directory (only when its
own admin token is the one to send: see below), else the default.

Token: `--token`, else `$MESHLINE_TOKEN`, else `--context NAME`'s, else the context for that
address (the current context when it names that server, else the one that does), else, for the
control plane `meshline up` runs from this directory, the admin token it wrote
(`.meshline/controlplane/admin-token`), else none.

A context's token is never sent to another server: `--context NAME` with an `--address` (or
`$MESHLINE_ADDRESS`) other than its server is refused (CredentialLookupError). And what a
directory says (`.meshline/controlplane.addr`, `.meshline/controlplane/ca.crt`) is used only
together with that directory's own admin token, a file this user owns and nobody else may
read, as `meshline up` writes it: a cloned repository cannot send a token from `--token`,
`$MESHLINE_TOKEN` or a context to a server of its choosing, nor make the CLI trust its CA.

CA (the API port speaks TLS): the context's certificate-authority, else, with `meshline up`'s
admin token, the mesh CA it made (`.meshline/controlplane/ca.crt`), else none (the system's
trusted roots: a control plane with a certificate from a public CA).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from cli.client.contexts import Context, CredentialsFile, config_path, load
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


class CredentialLookupError(ValueError):
    """The flags ask for something the lookup refuses (a context's token for another server,
    a context that is not there); the message says what to change."""


@dataclass(frozen=True)
class LocalControlPlane:
    """What `meshline up` left in its state dir for the control plane it runs: the address,
    the admin token (and its file) and the mesh CA (None until it is written)."""

    address: str
    token: str = field(repr=False)
    token_file: Path
    certificate_authority: Path | None


def _owners_secret(path: Path) -> bool:
    """Whether `path` is a regular file of this user that no one else may read or write, as
    write_secret_file makes them (a file from a cloned repository is not: git keeps no
    mode but the executable bit)."""
    try:
        info = path.lstat()
    except OSError:
        return False
    if not path.is_file() or path.is_symlink() or info.st_mode & 0o077:
        return False
    getuid = getattr(os, "getuid", None)
    return getuid is None or info.st_uid == getuid()


def local_control_plane(state_dir: Path) -> LocalControlPlane | None:
    """The control plane `meshline up` runs from `state_dir`: its recorded address with its
    admin token, the token file this user's own secret; None when any of it is missing."""
    token_file = state_dir / CONTROLPLANE_DIR / ADMIN_TOKEN_FILE
    if not _owners_secret(token_file):
        return None
    try:
        address = (state_dir / ADDRESS_FILE).read_text().strip()
        token = token_file.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not address or not token:
        return None
    ca = state_dir / CONTROLPLANE_DIR / CA_CERT_FILE
    return LocalControlPlane(address, token, token_file, ca.resolve() if ca.is_file() else None)


def named_context(
    flags: CredentialFlags, contexts: CredentialsFile, contexts_path: Path
) -> Context | None:
    """The context `--context` names (None without the flag); CredentialLookupError when the
    file has no such context."""
    if not flags.context:
        return None
    found = contexts.get(flags.context)
    if found is None:
        known = ", ".join(sorted(c.name for c in contexts.contexts)) or "none"
        raise CredentialLookupError(
            f"no context '{flags.context}' in {contexts_path} (contexts: {known}); "
            "`meshline login` saves one"
        )
    return found


def _token_given(flags: CredentialFlags, environ: Mapping[str, str]) -> bool:
    return bool(flags.token) or bool(environ.get(TOKEN_ENV, "").strip())


def resolve_server(
    explicit: str | None,
    flags: CredentialFlags,
    contexts: CredentialsFile,
    contexts_path: Path,
    state_dir: Path,
    environ: Mapping[str, str],
) -> str:
    if explicit:
        return explicit
    if env := environ.get(ADDRESS_ENV, "").strip():
        return env
    named = named_context(flags, contexts, contexts_path)
    chosen = named if named is not None else contexts.current
    if chosen is not None and chosen.server:
        return chosen.server
    if named is None and not _token_given(flags, environ):
        local = local_control_plane(state_dir)
        if local is not None:
            return local.address
    return FALLBACK_ADDRESS


def _ca(path: str, base: Path) -> Path | None:
    if not path:
        return None
    ca = Path(path).expanduser()
    return ca if ca.is_absolute() else base.parent / ca


def resolve_credential(
    address: str,
    flags: CredentialFlags,
    contexts: CredentialsFile,
    contexts_path: Path,
    state_dir: Path,
    environ: Mapping[str, str],
) -> ApiCredential:
    """The token for `address` (see the module's docstring for the order)."""
    named = named_context(flags, contexts, contexts_path)
    if named is not None and named.server != address:
        raise CredentialLookupError(
            f"context '{named.name}' is for server {named.server or '(none)'}, not {address}: a "
            "context's token is sent to its own server only. Leave out --address (and "
            f"${ADDRESS_ENV}) to reach {named.server or 'its server'}, or --context to use "
            f"another credential for {address}"
        )
    # A CA comes with the context of the server even when the token comes from elsewhere.
    chosen = named if named is not None else contexts.for_server(address)
    ca = _ca(chosen.certificate_authority, contexts_path) if chosen is not None else None
    if flags.token:
        return ApiCredential(flags.token.strip(), TokenSource.OPTION, certificate_authority=ca)
    if value := environ.get(TOKEN_ENV, "").strip():
        return ApiCredential(value, TokenSource.ENVIRONMENT, certificate_authority=ca)
    if chosen is not None and chosen.token:
        where = f"context '{chosen.name}' of {contexts_path}"
        return ApiCredential(chosen.token, TokenSource.CONTEXT, where, ca)
    local = local_control_plane(state_dir)
    if local is not None and local.address == address:
        ca = ca or local.certificate_authority
        return ApiCredential(local.token, TokenSource.ADMIN_FILE, str(local.token_file), ca)
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
        return resolve_server(
            explicit, self.flags, self.contexts, self.contexts_path, self.state_dir, self.environ
        )

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
