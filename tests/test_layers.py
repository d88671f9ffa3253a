"""The packages import in one direction, checked on every module's source (ast, nothing imported).

meshline (the generated stubs, keys, wire vocabulary, process helpers) is the bottom layer; the
control plane and the workers sit on it and never import each other; cli (the `meshline` command)
assembles them all, but its client half (cli.client, a separate program that talks to the API)
shares only meshline; bench measures everything and nothing imports it. Inside workers, the Torch
and Triton runtimes share workers.oip and never import each other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("meshline", "controlplane", "workers", "cli", "bench")


@dataclass(frozen=True)
class Rule:
    """Modules under `importer` must not import anything under `forbidden`."""

    importer: str
    forbidden: str


RULES: tuple[Rule, ...] = (
    *(Rule("meshline", above) for above in ("controlplane", "workers", "cli", "bench")),
    *(Rule("controlplane", above) for above in ("workers", "cli", "bench")),
    *(Rule("workers", above) for above in ("controlplane", "cli", "bench")),
    Rule("cli", "bench"),
    # the client is a separate program that talks to the API: it shares meshline, nothing else
    *(Rule("cli.client", server) for server in ("controlplane", "workers")),
    Rule("workers.torch_worker", "workers.triton_worker"),
    Rule("workers.triton_worker", "workers.torch_worker"),
    *(Rule("workers.oip", w) for w in ("workers.torch_worker", "workers.triton_worker")),
    Rule("workers.oip", "workers.agent"),
)


@dataclass(frozen=True)
class Exemption:
    """An import a rule forbids that is still there until its code moves down to meshline;
    `why` says what it shares. The list only shrinks: an exemption no import needs fails."""

    module: str
    imported: str
    why: str


EXEMPTIONS: tuple[Exemption, ...] = (
    Exemption(
        "cli.client.documents",
        "controlplane.api.documents",
        "the client reads apply files with the server's document parser",
    ),
    Exemption(
        "cli.client.documents",
        "controlplane.api.errors",
        "Apply's field errors as the server writes them into the trailers",
    ),
    Exemption("cli.client.render", "controlplane.policy", "`meshline plan` shows a policy rule"),
)


def exempted(module: str, imported: str) -> Exemption | None:
    """The exemption that lets `module` import `imported`, if any."""
    for exemption in EXEMPTIONS:
        if module == exemption.module and _under(imported, exemption.imported):
            return exemption
    return None


@dataclass(frozen=True)
class Violation:
    module: str
    imported: str

    def __str__(self) -> str:
        return f"{self.module} -> {self.imported}"


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violates(module: str, imported: str) -> bool:
    """True when a rule forbids `module` to import `imported` (both dotted names)."""
    return any(_under(module, rule.importer) and _under(imported, rule.forbidden) for rule in RULES)


def imports_in(source: str, module: str, is_package: bool = False) -> list[str]:
    """Every module `source` imports, anywhere in it (lazy and TYPE_CHECKING imports too),
    relative imports resolved against `module`. `from a import b` counts as a.b: b may be a
    module (it names one of a's modules or a name defined in a; both are under a)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            stem = ".".join([*base, *([node.module] if node.module else [])])
            found.extend(
                f"{stem}.{alias.name}" if alias.name != "*" else stem for alias in node.names
            )
    return found


def modules(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def forbidden_imports(package: str) -> list[Violation]:
    """Every import under `package` that a rule forbids, exempted or not."""
    found = []
    for module, path in modules(package):
        is_package = path.name == "__init__.py"
        for imported in imports_in(path.read_text(), module, is_package):
            if violates(module, imported):
                found.append(Violation(module, imported))
    return found


def violations(package: str) -> list[Violation]:
    return [v for v in forbidden_imports(package) if not exempted(v.module, v.imported)]


@pytest.mark.parametrize(
    ("module", "imported", "forbidden"),
    [
        # the bottom layer imports only itself (and third-party code)
        ("meshline.keys", "meshline.v1.api_pb2", False),
        ("meshline.process.children", "grpc", False),
        ("meshline.wire", "controlplane.translate.names", True),
        ("meshline.v1.api_pb2_grpc", "workers.agent", True),
        ("meshline", "cli.main", True),
        ("meshline.process.lock", "bench.load", True),
        # the control plane and the workers: meshline only, never each other
        ("controlplane.main", "meshline.v1.api_pb2", False),
        ("controlplane.api.documents", "controlplane.store.names", False),
        ("controlplane.reconciler", "workers.agent.launch", True),
        ("controlplane.api", "cli.client.api", True),
        ("controlplane.xds.server", "bench", True),
        ("workers.agent.main", "meshline.process.ports", False),
        ("workers.agent.main", "controlplane.lock", True),
        ("workers.torch_worker.main", "cli.main", True),
        ("workers.demo", "bench.serving", True),
        # the two runtimes share workers.oip; neither imports the other; oip imports neither
        ("workers.triton_worker.config", "workers.oip.signature", False),
        ("workers.triton_worker.main", "workers.torch_worker.config", True),
        ("workers.torch_worker.runtime", "workers.triton_worker.pbtxt", True),
        ("workers.oip.codec", "workers.torch_worker.datatypes", True),
        ("workers.oip.signature", "workers.agent.launch", True),
        ("workers.agent.standby_pool", "workers.torch_worker.standby", False),
        ("workers.agent.worker_load", "workers.triton_worker.metrics", False),
        # the top: cli assembles everything but bench; bench may import anything
        ("cli.server.commands", "controlplane.main", False),
        ("cli.server.commands", "workers.agent.main", False),
        ("cli.client.api", "meshline.v1", False),
        # ... but the client is a separate program: meshline only, however lazily imported
        ("cli.client.audit", "controlplane.api.key_tokens", True),
        ("cli.client.keys", "workers.agent", True),
        ("cli.client", "controlplane", True),
        ("cli.client.audit", "meshline.durations", False),
        ("cli.server.flags", "controlplane.store.names", False),
        ("cli.server.up", "bench.mesh_overhead", True),
        ("bench.mesh_overhead", "cli.server.up", False),
        ("bench.serving", "tests.harness.worker", False),
        # a prefix is a package, not a string: `clients` is not under `cli`
        ("meshline.x", "clients.y", False),
        ("workersx.y", "controlplane", False),
    ],
)
def test_import_rules(module: str, imported: str, forbidden: bool) -> None:
    assert violates(module, imported) is forbidden


@pytest.mark.parametrize(
    ("source", "module", "is_package", "expected"),
    [
        ("import grpc, meshline.wire", "cli.main", False, ["grpc", "meshline.wire"]),
        ("from meshline import wire", "cli.main", False, ["meshline.wire"]),
        ("from . import codec", "workers.oip.signature", False, ["workers.oip.codec"]),
        ("from .errors import X", "workers.oip", True, ["workers.oip.errors.X"]),
        ("from ..agent import main", "workers.oip.codec", False, ["workers.agent.main"]),
        ("from x import *", "a.b", False, ["x"]),
        (
            "def f():\n    from controlplane.main import serve\n",
            "cli.server.commands",
            False,
            ["controlplane.main.serve"],
        ),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n",
            "workers.oip.datatypes",
            False,
            ["typing.TYPE_CHECKING", "torch"],
        ),
    ],
)
def test_imports_in_finds_every_import(
    source: str, module: str, is_package: bool, expected: list[str]
) -> None:
    assert sorted(imports_in(source, module, is_package)) == sorted(expected)


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_below_itself(package: str) -> None:
    names = [name for name, _ in modules(package)]
    assert package in names  # the walk found the package itself (and so its modules)
    found = violations(package)
    assert not found, "imports against the layering:\n" + "\n".join(map(str, found))


def test_every_exemption_is_still_needed() -> None:
    for exemption in EXEMPTIONS:
        found = forbidden_imports(exemption.module.split(".")[0])
        assert violates(exemption.module, exemption.imported), exemption  # a rule forbids it
        assert any(exempted(v.module, v.imported) == exemption for v in found), (
            f"{exemption.module} no longer imports {exemption.imported}: drop its exemption"
        )
