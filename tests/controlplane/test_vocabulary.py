"""One vocabulary: Envoy names are made in one place and read from the IR, never rebuilt.

What reads Envoy's state or the agents' reports about it (status, drain release, rollouts,
autoscaling, moves, the activator, explain) must not depend on translate or on Envoy's protos:
then a rename in translate cannot break status.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTROLPLANE = ROOT / "controlplane"

# Modules that read what the data plane confirmed: typed IR and reports only.
READERS = [
    "controlplane/status.py",
    "controlplane/confirmed.py",
    "controlplane/explain.py",
    "controlplane/moves.py",
    "controlplane/offload.py",
    "controlplane/reconcile",
    "controlplane/rollout",
    "controlplane/autoscale",
    "controlplane/activator",
]
# The one module that spells how our Envoy resources are named.
NAMING = CONTROLPLANE / "ir" / "names.py"


def _modules(path: str) -> list[Path]:
    target = ROOT / path
    return sorted(target.rglob("*.py")) if target.is_dir() else [target]


def _imports(path: Path) -> set[str]:
    """Every module imported, and every `module.name` imported from one."""
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


# What makes the names of clusters and routes: only the IR model (and translate) may use it;
# readers find the names in the IR. (Hostnames the reconciler tells agents are fine.)
NAME_MAKERS = tuple(
    f"controlplane.ir.names.{name}"
    for name in ("backend_clusters", "route_base", "route_name", "authority_virtual_host")
)


@pytest.mark.parametrize("path", [p for r in READERS for p in _modules(r)], ids=str)
def test_readers_of_the_data_plane_know_neither_translate_nor_envoy_protos(path: Path) -> None:
    bad = sorted(
        name
        for name in _imports(path)
        if name.startswith(("controlplane.translate", "envoy.")) or name in NAME_MAKERS
    )
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def _strings(path: Path) -> list[ast.Constant]:
    """String constants of a module, docstrings and comments aside (prose may name things)."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def _spells_a_name(text: str) -> bool:
    return "~local" in text or (text.startswith(("gateway.", "authority.")) and len(text) > 8)


def test_the_naming_scheme_is_written_once() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}"
        for path in sorted(CONTROLPLANE.rglob("*.py"))
        if path != NAMING
        for node in _strings(path)
        if _spells_a_name(str(node.value))
    ]
    assert not offenders, "\n".join(offenders)
