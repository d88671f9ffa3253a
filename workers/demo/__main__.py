"""`python -m workers.demo --out FILE [--seed N]`: build the demo MLP as TorchScript."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from workers.demo.model import build_mlp, demo_signature_json


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workers.demo", description="Build the demo MLP (784 -> 128 -> 10)."
    )
    parser.add_argument("--out", required=True, type=Path, help="where to write the .pt file")
    parser.add_argument("--seed", type=int, default=0, help="weights seed (a seed = a version)")
    args = parser.parse_args(argv)
    path = build_mlp(args.out, seed=args.seed)
    print(path)
    print(f"signature: {demo_signature_json()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
