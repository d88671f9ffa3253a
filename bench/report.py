"""docs/benchmarks.md is shared: each benchmark rewrites only its own `## ` section."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "benchmarks.md"
TITLE = "# Benchmarks\n"


def write_section(section: str, path: Path = REPORT) -> None:
    """Replace the section whose `## ` heading `section` starts with, or append it at the end.

    Every other section of the file is kept as it is, in its place.
    """
    heading = section.splitlines()[0]
    if not heading.startswith("## "):
        raise ValueError(f"a section starts with a '## ' heading, not {heading!r}")
    text = path.read_text() if path.exists() else TITLE
    head, *sections = re.split(r"(?m)^(?=## )", text)
    body = section.strip() + "\n"
    for i, old in enumerate(sections):
        if old.splitlines()[0].strip() == heading.strip():
            sections[i] = body
            break
    else:
        sections.append(body)
    parts = [head.strip() + "\n", *(s.strip() + "\n" for s in sections)]
    path.write_text("\n".join(parts))
