"""README.md's fenced code blocks as steps a test runs in order (pure: no processes here).

A block is classified by its language and an optional marker on the line before it:

- ``sh`` / ``bash`` / ``shell``: run with bash (``set -e``); ``python``: with the venv's Python;
- ``yaml`` whose first line names a file (``# my-model.yaml``): written to that file, so the
  blocks after it can ``meshline apply -f`` it;
- ``text``: shown, not run (diagrams, output);
- ``<!-- readme-test: skip (why) -->``: cannot run on a fresh ``make up`` (the reason is required);
- ``<!-- readme-test: fragment -->``: an excerpt, not meant to run on its own.

Anything else (no language, a YAML excerpt without a file name or marker, an unknown marker) is an
error naming the README line: every block either runs or says why it does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

SHELL_LANGUAGES = frozenset({"sh", "bash", "shell"})
PYTHON_LANGUAGES = frozenset({"python", "py"})
YAML_LANGUAGES = frozenset({"yaml", "yml"})
TEXT_LANGUAGES = frozenset({"text"})

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<lang>[^\s`]*)")
_MARKER = re.compile(
    r"^\s*<!--\s*readme-test:\s*(?P<kind>[\w-]+)\s*(?:\((?P<reason>.*)\))?\s*-->\s*$"
)
_MARKER_START = re.compile(r"^\s*<!--\s*readme-test\b")
_FILE_NAME = re.compile(r"^#\s*(?P<name>[\w.-]+\.ya?ml)(?:\s|$)")


class Action(Enum):
    SHELL = "shell"
    PYTHON = "python"
    WRITE_FILE = "write file"
    TEXT = "text"
    SKIP = "skip"
    FRAGMENT = "fragment"


@dataclass(frozen=True)
class Marker:
    kind: str
    reason: str


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    marker: Marker | None = None


@dataclass(frozen=True)
class Step:
    block: Block
    action: Action
    file_name: str = ""  # WRITE_FILE: where the block goes, relative to the working directory
    reason: str = ""  # SKIP / FRAGMENT: the marker's reason


class ReadmeError(ValueError):
    """A block (or marker) the README test cannot classify, with its line."""


def fenced_blocks(markdown: str) -> list[Block]:
    """Every fenced code block in order, with the readme-test marker right before it."""
    lines = markdown.splitlines()
    blocks: list[Block] = []
    pending: tuple[int, Marker] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        if _MARKER_START.match(line):
            if pending is not None:
                raise ReadmeError(
                    f"README.md:{pending[0]}: readme-test marker before no code block"
                )
            pending = (index + 1, _parse_marker(line, index + 1))
            index += 1
            continue
        fence = _FENCE.match(line)
        if fence is None:
            if line.strip() and pending is not None:
                raise ReadmeError(
                    f"README.md:{pending[0]}: readme-test marker must be right before a code block"
                )
            index += 1
            continue
        indent, mark = len(fence["indent"]), fence["fence"]
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not _closes(lines[end], mark):
            body.append(_dedent(lines[end], indent))
            end += 1
        if end == len(lines):
            raise ReadmeError(f"README.md:{index + 1}: code block is never closed")
        marker = pending[1] if pending is not None else None
        blocks.append(Block(index + 1, fence["lang"].lower(), "\n".join(body) + "\n", marker))
        pending = None
        index = end + 1
    if pending is not None:
        raise ReadmeError(f"README.md:{pending[0]}: readme-test marker before no code block")
    return blocks


def _closes(line: str, mark: str) -> bool:
    stripped = line.strip()
    return (
        len(line) - len(line.lstrip(" ")) <= 3
        and stripped.startswith(mark)
        and set(stripped) == {mark[0]}
    )


def _dedent(line: str, indent: int) -> str:
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, indent) :]


def _parse_marker(line: str, number: int) -> Marker:
    match = _MARKER.match(line)
    if match is None:
        raise ReadmeError(
            f"README.md:{number}: malformed marker {line.strip()!r}; "
            "write <!-- readme-test: skip (why) --> or <!-- readme-test: fragment -->"
        )
    kind, reason = match["kind"], (match["reason"] or "").strip()
    if kind not in ("skip", "fragment"):
        raise ReadmeError(
            f"README.md:{number}: unknown readme-test marker {kind!r}; one of: skip, fragment"
        )
    if kind == "skip" and not reason:
        raise ReadmeError(
            f"README.md:{number}: a skipped block says why: <!-- readme-test: skip (why) -->"
        )
    return Marker(kind, reason)


def classify(block: Block) -> Step:
    """What the README test does with one block; ReadmeError if it cannot tell."""
    if block.marker is not None:
        action = Action.SKIP if block.marker.kind == "skip" else Action.FRAGMENT
        return Step(block, action, reason=block.marker.reason)
    where = f"README.md:{block.line}"
    if block.language in SHELL_LANGUAGES:
        return Step(block, Action.SHELL)
    if block.language in PYTHON_LANGUAGES:
        return Step(block, Action.PYTHON)
    if block.language in TEXT_LANGUAGES:
        return Step(block, Action.TEXT)
    if block.language in YAML_LANGUAGES:
        first = block.text.splitlines()[0] if block.text.strip() else ""
        if named := _FILE_NAME.match(first):
            return Step(block, Action.WRITE_FILE, file_name=named["name"])
        raise ReadmeError(
            f"{where}: a yaml block is a file only when its first line names it "
            "(`# name.yaml`); mark an excerpt <!-- readme-test: fragment -->"
        )
    if not block.language:
        raise ReadmeError(
            f"{where}: code block without a language; use text for diagrams and output"
        )
    raise ReadmeError(
        f"{where}: cannot run a {block.language!r} block; "
        "mark it <!-- readme-test: skip (why) --> or <!-- readme-test: fragment -->"
    )


def readme_steps(markdown: str) -> list[Step]:
    """Every block of the README, classified, in order; one error listing every bad block."""
    steps: list[Step] = []
    problems: list[str] = []
    for block in fenced_blocks(markdown):
        try:
            steps.append(classify(block))
        except ReadmeError as exc:
            problems.append(str(exc))
    if problems:
        raise ReadmeError("\n".join(problems))
    return steps


_TMP = re.compile(r"(?<![\w./-])/tmp/")


def localize(text: str, addresses: dict[str, str], tmp_dir: str) -> str:
    """The block as it runs against the test's own network.

    `addresses` maps each address the README names (the gateway ports `make up` prefers) to the
    one the test's `up` really got; `/tmp/...` paths go under `tmp_dir`, so that concurrent runs
    and a reader's own files are left alone.
    """
    if addresses:  # one pass: a real address may be another address the README names
        written = re.compile("|".join(re.escape(a) + r"(?!\d)" for a in addresses))
        text = written.sub(lambda m: addresses[m.group(0)], text)
    return _TMP.sub(tmp_dir.rstrip("/") + "/", text)
