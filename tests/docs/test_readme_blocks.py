"""How the README test reads README.md: blocks, markers, classification, localization."""

from __future__ import annotations

import pytest

from tests.harness.processes import REPO_ROOT
from tests.harness.readme import (
    Action,
    Block,
    Marker,
    ReadmeError,
    classify,
    fenced_blocks,
    localize,
    readme_steps,
)

FENCE = "```"


def md(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def test_blocks_come_in_order_with_their_line_language_text_and_marker() -> None:
    text = md(
        "# Title",
        f"{FENCE}sh",
        "echo one",
        FENCE,
        "",
        "<!-- readme-test: skip (needs your own Triton) -->",
        "",
        f"{FENCE}YAML",
        "kind: Model",
        FENCE,
        f"  {FENCE}python",
        "  print(1)",
        "    print(2)",
        f"  {FENCE}",
    )
    assert fenced_blocks(text) == [
        Block(2, "sh", "echo one\n"),
        Block(8, "yaml", "kind: Model\n", Marker("skip", "needs your own Triton")),
        Block(11, "python", "print(1)\n  print(2)\n"),
    ]


def test_a_longer_fence_holds_a_shorter_one() -> None:
    text = md("````markdown", FENCE + "sh", "echo", FENCE, "````")
    assert fenced_blocks(text) == [Block(1, "markdown", f"{FENCE}sh\necho\n{FENCE}\n")]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (md(f"{FENCE}sh", "echo"), "README.md:1: code block is never closed"),
        (
            md("<!-- readme-test: skip -->", f"{FENCE}sh", FENCE),
            "README.md:1: a skipped block says why",
        ),
        (
            md("<!-- readme-test: maybe -->", f"{FENCE}sh", FENCE),
            "unknown readme-test marker 'maybe'",
        ),
        (md("<!-- readme-test skip -->", f"{FENCE}sh", FENCE), "README.md:1: malformed marker"),
        (md("<!-- readme-test: fragment -->", "Some prose.", f"{FENCE}sh", FENCE), "right before"),
        (md("text", "<!-- readme-test: fragment -->"), "README.md:2: readme-test marker before no"),
        (
            md("<!-- readme-test: fragment -->", "<!-- readme-test: fragment -->", FENCE, FENCE),
            "README.md:1: readme-test marker before no code block",
        ),
    ],
)
def test_bad_fences_and_markers_are_errors_naming_the_line(text: str, problem: str) -> None:
    with pytest.raises(ReadmeError, match=problem):
        fenced_blocks(text)


@pytest.mark.parametrize(
    ("block", "action", "file_name", "reason"),
    [
        (Block(1, "sh", "make up\n"), Action.SHELL, "", ""),
        (Block(1, "bash", "ls\n"), Action.SHELL, "", ""),
        (Block(1, "python", "print()\n"), Action.PYTHON, "", ""),
        (Block(1, "text", "a diagram\n"), Action.TEXT, "", ""),
        (
            Block(1, "yaml", "# my-model.yaml\nkind: Model\n"),
            Action.WRITE_FILE,
            "my-model.yaml",
            "",
        ),
        (Block(1, "yml", "# global.yaml — why\nkind: X\n"), Action.WRITE_FILE, "global.yaml", ""),
        (Block(1, "yaml", "#dev.yml\n"), Action.WRITE_FILE, "dev.yml", ""),
        (Block(1, "sh", "make up\n", Marker("skip", "it is this")), Action.SKIP, "", "it is this"),
        (Block(1, "yaml", "spec:\n", Marker("fragment", "")), Action.FRAGMENT, "", ""),
        (Block(1, "", "a\n", Marker("fragment", "why")), Action.FRAGMENT, "", "why"),
    ],
)
def test_classify(block: Block, action: Action, file_name: str, reason: str) -> None:
    step = classify(block)
    assert (step.action, step.file_name, step.reason) == (action, file_name, reason)


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        (Block(7, "", "a diagram\n"), "README.md:7: code block without a language"),
        (Block(7, "yaml", "spec:\n  version: v4\n"), "README.md:7: a yaml block is a file only"),
        (Block(7, "yaml", "# 2. A local path\n"), "README.md:7: a yaml block is a file only"),
        (Block(7, "yaml", ""), "README.md:7: a yaml block is a file only"),
        (Block(7, "json", "{}\n"), "README.md:7: cannot run a 'json' block"),
    ],
)
def test_a_block_that_cannot_be_classified_is_an_error(block: Block, problem: str) -> None:
    with pytest.raises(ReadmeError, match=problem):
        classify(block)


def test_every_unclassified_block_is_listed_at_once() -> None:
    text = md(FENCE, FENCE, f"{FENCE}yaml", "spec: {}", FENCE)
    with pytest.raises(ReadmeError) as raised:
        readme_steps(text)
    assert str(raised.value).splitlines()[0].startswith("README.md:1:")
    assert str(raised.value).splitlines()[1].startswith("README.md:3:")


EU_ELSEWHERE = {"127.0.0.1:8081": "127.0.0.1:40001"}
SWAPPED = {"127.0.0.1:8081": "127.0.0.1:8082", "127.0.0.1:8082": "127.0.0.1:8081"}


@pytest.mark.parametrize(
    ("text", "addresses", "expected"),
    [
        ("GW=127.0.0.1:8081", EU_ELSEWHERE, "GW=127.0.0.1:40001"),
        # one pass: eu's new address is not rewritten again as the README's us address
        ("eu 127.0.0.1:8081 us 127.0.0.1:8082", SWAPPED, "eu 127.0.0.1:8082 us 127.0.0.1:8081"),
        ("127.0.0.1:80810", EU_ELSEWHERE, "127.0.0.1:80810"),
        ("--out /tmp/model.pt", {}, "--out /scratch/model.pt"),
        ("path: /tmp/model.pt", {}, "path: /scratch/model.pt"),
        ('"/tmp/a" /var/tmp/b x/tmp/c', {}, '"/scratch/a" /var/tmp/b x/tmp/c'),
    ],
)
def test_localize(text: str, addresses: dict[str, str], expected: str) -> None:
    assert localize(text, addresses, "/scratch/") == expected


def test_every_block_of_the_readme_runs_or_says_why_not() -> None:
    steps = readme_steps((REPO_ROOT / "README.md").read_text())
    assert any(s.action is Action.SHELL for s in steps)
    for step in steps:
        if step.action is Action.SKIP:
            assert step.reason, f"README.md:{step.block.line}: a skip without a reason"
