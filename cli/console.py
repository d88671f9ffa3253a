"""The terminal the commands print to."""

from __future__ import annotations

import sys

from rich.console import Console

# Not a terminal (pipes, CI): do not squeeze tables into 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=200)
