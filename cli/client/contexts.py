"""The CLI's credentials file: named contexts (a control plane and the token for it), like
kubectl's kubeconfig.

`$MESHLINE_CONFIG`, else `~/.meshline/config`; YAML, written 0600 (it holds tokens):

    current-context: local
    contexts:
      - name: local
        server: 127.0.0.1:7070
        token: eyJ...
        certificate-authority: /path/to/ca.crt   # optional: the CA of its TLS certificate

Reading and changing the file are plain functions over a `CredentialsFile` value; only
`load` and `save` touch the disk.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from meshline.secret_file import write_secret_file
from meshline.wire import CONFIG_ENV

DEFAULT_CONFIG = Path(".meshline") / "config"  # under the home directory


class ConfigError(ValueError):
    """The credentials file cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class Context:
    name: str
    server: str
    token: str = ""
    certificate_authority: str = ""  # path of a CA PEM; "" = the system's trusted roots

    def __repr__(self) -> str:  # never show the token
        return f"Context(name={self.name!r}, server={self.server!r})"


@dataclass(frozen=True)
class CredentialsFile:
    current_context: str = ""
    contexts: tuple[Context, ...] = ()

    def get(self, name: str) -> Context | None:
        return next((c for c in self.contexts if c.name == name), None)

    @property
    def current(self) -> Context | None:
        return self.get(self.current_context) if self.current_context else None

    def for_server(self, server: str) -> Context | None:
        """The context to use for `server`: the current one when it names that server, else
        the first (by name) that does."""
        current = self.current
        if current is not None and current.server == server:
            return current
        return next(
            (c for c in sorted(self.contexts, key=lambda c: c.name) if c.server == server), None
        )

    def with_context(self, context: Context, make_current: bool = True) -> CredentialsFile:
        """This file with `context` added, or replacing the one of its name."""
        others = tuple(c for c in self.contexts if c.name != context.name)
        current = context.name if make_current else self.current_context
        return CredentialsFile(current, (*others, context))

    def without(self, name: str) -> CredentialsFile:
        contexts = tuple(c for c in self.contexts if c.name != name)
        current = "" if self.current_context == name else self.current_context
        return CredentialsFile(current, contexts)

    def using(self, name: str) -> CredentialsFile:
        return replace(self, current_context=name)


def config_path(environ: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """`$MESHLINE_CONFIG`, else `~/.meshline/config`."""
    env = os.environ if environ is None else environ
    if value := env.get(CONFIG_ENV, "").strip():
        return Path(value).expanduser()
    return (home or Path.home()) / DEFAULT_CONFIG


def _text(entry: Mapping[str, object], key: str, where: str) -> str:
    value = entry.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{key} must be a string")
    return value


def parse(text: str, path: Path) -> CredentialsFile:
    """The file's contexts; ConfigError naming the file and the field that is wrong."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if doc is None:
        return CredentialsFile()
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping with current-context and contexts")
    entries = doc.get("contexts") or []
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: contexts must be a list")
    contexts = []
    for i, entry in enumerate(entries):
        where = f"{path}: contexts[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a mapping")
        name = _text(entry, "name", where)
        if not name:
            raise ConfigError(f"{where}.name is required")
        contexts.append(
            Context(
                name,
                _text(entry, "server", where),
                _text(entry, "token", where),
                _text(entry, "certificate-authority", where),
            )
        )
    current = doc.get("current-context") or ""
    if not isinstance(current, str):
        raise ConfigError(f"{path}: current-context must be a string")
    return CredentialsFile(current, tuple(contexts))


def render(file: CredentialsFile) -> str:
    contexts = []
    for c in file.contexts:
        entry = {"name": c.name, "server": c.server, "token": c.token}
        if c.certificate_authority:
            entry["certificate-authority"] = c.certificate_authority
        contexts.append(entry)
    doc = {"current-context": file.current_context, "contexts": contexts}
    return yaml.safe_dump(doc, sort_keys=False)


def load(path: Path) -> CredentialsFile:
    """The file at `path`; empty when there is none."""
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return CredentialsFile()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    return parse(text, path)


def save(path: Path, file: CredentialsFile) -> Path:
    """Write the file, 0600 from the first byte (it holds tokens)."""
    return write_secret_file(path, render(file))
