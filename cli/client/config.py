"""`meshline config get-contexts|use-context|current-context|delete-context`: the credentials
file's contexts (cli/client/contexts.py), like `kubectl config`. Tokens are never printed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.client import contexts
from cli.client.api import fail, lookup
from cli.console import console

app = typer.Typer(
    help="Contexts of the credentials file ($MESHLINE_CONFIG or ~/.meshline/config).",
    no_args_is_help=True,
)

NameArgument = Annotated[str, typer.Argument(help="Context name")]


def _save(path: Path, file: contexts.CredentialsFile) -> None:
    try:
        contexts.save(path, file)
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror}") from None


@app.command("get-contexts")
def get_contexts() -> None:
    """List the contexts; * marks the current one."""
    found = lookup()
    table = Table("CURRENT", "NAME", "SERVER", "CERTIFICATE AUTHORITY", box=None)
    for c in sorted(found.contexts.contexts, key=lambda c: c.name):
        current = "*" if c.name == found.contexts.current_context else ""
        table.add_row(current, c.name, c.server, c.certificate_authority or "-")
    console.print(table)


@app.command("current-context")
def current_context() -> None:
    """Print the current context's name."""
    found = lookup()
    if not found.contexts.current_context:
        raise fail(f"no current context in {found.contexts_path} (`meshline login` sets one)")
    typer.echo(found.contexts.current_context)


@app.command("use-context")
def use_context(name: NameArgument) -> None:
    """Make a context the current one."""
    found = lookup()
    if found.contexts.get(name) is None:
        known = ", ".join(sorted(c.name for c in found.contexts.contexts)) or "none"
        raise fail(f"no context '{name}' in {found.contexts_path} (contexts: {known})")
    _save(found.contexts_path, found.contexts.using(name))
    typer.echo(f"switched to context '{name}'")


@app.command("delete-context")
def delete_context(name: NameArgument) -> None:
    """Delete a context (its token with it)."""
    found = lookup()
    if found.contexts.get(name) is None:
        raise fail(f"no context '{name}' in {found.contexts_path}")
    _save(found.contexts_path, found.contexts.without(name))
    typer.echo(f"deleted context '{name}' from {found.contexts_path}")
